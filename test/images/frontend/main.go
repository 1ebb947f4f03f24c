// Command frontend is the demo's static web frontend: Debian's nginx
// (added to the image by imagebuild.Nginx) serving the page embedded here.
// It writes nginx's configuration and the site under /tmp and replaces
// itself with nginx in the foreground, listening on $PORT (default 8080)
// as whatever unprivileged user the pod runs it as.
package main

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

//go:embed site
var site embed.FS

const conf = `worker_processes 1;
pid /tmp/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off; # the ingress proxy logs every request
  client_body_temp_path /tmp/nginx/body;
  proxy_temp_path /tmp/nginx/proxy;
  fastcgi_temp_path /tmp/nginx/fastcgi;
  uwsgi_temp_path /tmp/nginx/uwsgi;
  scgi_temp_path /tmp/nginx/scgi;
  server {
    listen %s;
    root /tmp/nginx/site;
    location = /healthz { access_log off; return 200 "ok\n"; }
    location / { try_files $uri $uri/ /index.html; }
  }
}
`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	dir := "/tmp/nginx"
	if err := fs.WalkDir(site, "site", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := site.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(conf, port)), 0o644); err != nil {
		return err
	}
	args := []string{"nginx", "-e", "stderr", "-c", cfg, "-g", "daemon off;"}
	return syscall.Exec("/usr/sbin/nginx", args, os.Environ())
}
