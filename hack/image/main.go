// Command image builds one of the project's small Go programs into an image
// archive for `havre image import` (see internal/imagebuild).
//
//	go run ./hack/image -dir test/images/web -ref havre.local/demo/web:0.1 -out bin
//	go run ./hack/image -dir test/images/postgres -postgres -ref havre.local/demo/postgres:15 -out bin
//	go run ./hack/image -dir test/images/frontend -nginx -ref havre.local/demo/frontend:0.1 -out bin
//
// -postgres adds Debian's PostgreSQL server of this machine
// (imagebuild.Postgres), -nginx its nginx (imagebuild.Nginx).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/havre/havre/internal/imagebuild"
)

func main() {
	dir := flag.String("dir", "test/images/web", "the program's directory, relative to the module root")
	ref := flag.String("ref", "", "the image's name and tag, e.g. havre.local/demo/web:0.1")
	out := flag.String("out", "bin", "directory the archive is written to")
	postgres := flag.Bool("postgres", false, "add this machine's PostgreSQL server (for test/images/postgres)")
	nginx := flag.Bool("nginx", false, "add this machine's nginx (for test/images/frontend)")
	flag.Parse()
	if *ref == "" {
		fmt.Fprintln(os.Stderr, "image: -ref is required (e.g. -ref havre.local/demo/web:0.1)")
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	var archive string
	var host func() (imagebuild.Host, error)
	switch {
	case *postgres && *nginx:
		fmt.Fprintln(os.Stderr, "image: give -postgres or -nginx, not both")
		os.Exit(2)
	case *postgres:
		host = imagebuild.Postgres
	case *nginx:
		host = imagebuild.Nginx
	}
	if host != nil {
		var h imagebuild.Host
		if h, err = host(); err == nil {
			archive, err = imagebuild.BuildWithHost(context.Background(), root, *dir, *ref, *out, h)
		}
	} else {
		archive, err = imagebuild.Build(context.Background(), root, *dir, *ref, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(archive)
}
