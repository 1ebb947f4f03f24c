package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Network applets, for the tests of Services and cluster DNS from inside
// a pod:
//
//	get URL                 GETs URL and prints the body (exit 1 on error)
//	lookup NAME             resolves NAME as a program would (resolv.conf's
//	                        search list and ndots) and prints the addresses
//	dnsq [-t TYPE] [-s SERVER] [-tcp] NAME
//	                        asks one question and prints the answer's rcode,
//	                        then each record of the answer section and then
//	                        of the additional section
//	udpsend ADDR MSG        sends MSG over UDP and prints the reply
//	unreachable TARGET FOR  connects to TARGET (IP:PORT/tcp or /udp, as
//	                        /probe) again and again, from its start and
//	                        for FOR (e.g. 5s): exit 0 when it never
//	                        answered, 1 with the time it did
func init() {
	applets["get"] = getApplet
	applets["lookup"] = lookupApplet
	applets["dnsq"] = dnsqApplet
	applets["udpsend"] = udpSendApplet
	applets["unreachable"] = unreachableApplet
}

func unreachableApplet(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: unreachable IP:PORT/PROTO DURATION")
	}
	d, err := time.ParseDuration(args[1])
	if err != nil {
		return err
	}
	start := time.Now()
	for attempt := 1; time.Since(start) < d; attempt++ {
		if probe(args[0], 100*time.Millisecond) {
			return fmt.Errorf("%s answered attempt %d, %v after the start", args[0], attempt, time.Since(start))
		}
	}
	fmt.Printf("%s never answered in %v\n", args[0], d)
	return nil
}

func getApplet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: get URL")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func lookupApplet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: lookup NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The pure Go resolver reads /etc/resolv.conf as libc does.
	r := &net.Resolver{PreferGo: true}
	addrs, err := r.LookupHost(ctx, args[0])
	if err != nil {
		return err
	}
	for _, a := range addrs {
		fmt.Println(a)
	}
	return nil
}

func dnsqApplet(args []string) error {
	fs := flag.NewFlagSet("dnsq", flag.ContinueOnError)
	qtype := fs.String("t", "A", "question type")
	server := fs.String("s", "", "server (default: resolv.conf's first nameserver)")
	tcp := fs.Bool("tcp", false, "ask over TCP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: dnsq [-t TYPE] [-s SERVER] [-tcp] NAME")
	}
	t, ok := dns.StringToType[strings.ToUpper(*qtype)]
	if !ok {
		return fmt.Errorf("unknown type %s", *qtype)
	}
	if *server == "" {
		conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(conf.Servers) == 0 {
			return fmt.Errorf("no nameserver in /etc/resolv.conf: %v", err)
		}
		*server = conf.Servers[0]
	}
	if _, _, err := net.SplitHostPort(*server); err != nil {
		*server = net.JoinHostPort(*server, "53")
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(fs.Arg(0)), t)
	c := &dns.Client{Timeout: 5 * time.Second}
	if *tcp {
		c.Net = "tcp"
	}
	r, _, err := c.Exchange(m, *server)
	if err != nil {
		return err
	}
	fmt.Println(dns.RcodeToString[r.Rcode])
	for _, rr := range append(r.Answer, r.Extra...) {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		fmt.Println(rr.String())
	}
	return nil
}

func udpSendApplet(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: udpsend ADDR MSG")
	}
	conn, err := net.Dial("udp", args[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte(args[1])); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && reply == "" {
		return err
	}
	fmt.Print(reply)
	return nil
}

// serveUDP answers every datagram on addr with "web <hostname> <client>".
func serveUDP(addr string) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "udp: %v\n", err)
		os.Exit(1)
	}
	h, _ := os.Hostname()
	buf := make([]byte, 2048)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		_, _ = pc.WriteTo([]byte(fmt.Sprintf("web %s %s\n", h, from)), from)
	}
}
