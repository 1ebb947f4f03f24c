package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ping [-s SIZE] [-M do] [-c COUNT] [-W SECONDS] IP: ICMP echo over a raw
// socket. -s is the payload size (the packet is 28 bytes more); -M do sets
// don't-fragment, so that a packet larger than the path MTU fails. Prints
// one line per reply; exits 1 unless every echo was answered.
func init() { applets["ping"] = pingApplet }

func pingApplet(args []string) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	size := fs.Int("s", 56, "payload size")
	pmtu := fs.String("M", "", "do: set don't-fragment")
	count := fs.Int("c", 1, "echoes")
	wait := fs.Int("W", 2, "seconds to wait for each reply")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: ping [-s SIZE] [-M do] [-c COUNT] [-W SECONDS] IP")
	}
	dst := net.ParseIP(fs.Arg(0)).To4()
	if dst == nil {
		return fmt.Errorf("%s: want an IPv4 address", fs.Arg(0))
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err != nil {
		return err
	}
	if *pmtu == "do" {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO); err != nil {
			return err
		}
	}
	f := os.NewFile(uintptr(fd), "icmp")
	conn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return err
	}
	defer conn.Close()
	id := os.Getpid() & 0xffff
	for seq := 1; seq <= *count; seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, *size)}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst}); err != nil {
			return fmt.Errorf("sending %d bytes: %w", *size, err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(time.Duration(*wait) * time.Second)); err != nil {
			return err
		}
		buf := make([]byte, 65536)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("no reply to echo %d: %w", seq, err)
			}
			// A raw socket reads the IP header too.
			if n < 20 {
				continue
			}
			hl := int(buf[0]&0x0f) * 4
			reply, err := icmp.ParseMessage(1, buf[hl:n])
			if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if e, ok := reply.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
				fmt.Printf("%d bytes from %s: seq=%d\n", n-hl, from, seq)
				break
			}
		}
	}
	return nil
}
