package certificates_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/havre/havre/internal/certs/acme"
	"github.com/havre/havre/test/framework"
)

// buildPebble builds the Pebble ACME test CA (the go.mod tool
// github.com/letsencrypt/pebble/v2/cmd/pebble) once into
// os.UserCacheDir()/havre-test/pebble-<hash of go.sum and Go version>.
var (
	pebbleOnce sync.Once
	pebbleBin  string
	pebbleErr  error
)

func buildPebble(t *testing.T) string {
	t.Helper()
	pebbleOnce.Do(func() {
		root, err := framework.ModuleRoot()
		if err != nil {
			pebbleErr = err
			return
		}
		sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
		if err != nil {
			pebbleErr = err
			return
		}
		h := sha256.Sum256(append(sum, runtime.Version()...))
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "havre-test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			pebbleErr = err
			return
		}
		bin := filepath.Join(dir, "pebble-"+hex.EncodeToString(h[:8]))
		if _, err := os.Stat(bin); err == nil {
			pebbleBin = bin
			return
		}
		tmp := bin + fmt.Sprintf(".tmp%d", os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleErr = fmt.Errorf("building pebble: %v\n%s", err, out)
			return
		}
		pebbleErr = os.Rename(tmp, bin)
		pebbleBin = bin
	})
	if pebbleErr != nil {
		t.Fatal(pebbleErr)
	}
	return pebbleBin
}

// startDNS runs a DNS server on loopback answering every A question with
// addr (and every other question with no record): Pebble's validation
// authority resolves the test names with it.
func startDNS(t *testing.T, addr net.IP) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: addr})
			}
		}
		_ = w.WriteMsg(m)
	})
	// Go's resolver may ask over UDP or TCP.
	udp, tcp := &dns.Server{PacketConn: pc, Handler: handler}, &dns.Server{Listener: ln, Handler: handler}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
	return pc.LocalAddr().String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pebble is a running Pebble.
type pebble struct {
	Directory string
	// CABundle is the file of the root Pebble's HTTPS is served with.
	CABundle string
	mgmt     string
	roots    *x509.CertPool
	log      *syncBuffer
}

// Orders is the number of orders Pebble has accepted.
func (p *pebble) Orders() int { return strings.Count(p.log.String(), "Added order") }

// startPebble runs Pebble on loopback validating HTTP-01 on httpPort and
// TLS-ALPN-01 on tlsPort of 127.0.0.1, issuing certificates valid for
// validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	return startPebbleAt(t, net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 1), httpPort, tlsPort, validity)
}

// startPebbleAt runs Pebble listening on listen (an address of this
// process's network namespace), resolving every name to target, where it
// validates HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort, issuing
// certificates valid for validity.
func startPebbleAt(t *testing.T, listen, target net.IP, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	bin := buildPebble(t)
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t, listen)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, certPEM, 0o600))
	must(t, os.WriteFile(keyFile, keyPEM, 0o600))
	port, err := framework.FreePort()
	must(t, err)
	mport, err := framework.FreePort()
	must(t, err)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  net.JoinHostPort(listen.String(), strconv.Itoa(port)),
		"managementListenAddress":        net.JoinHostPort(listen.String(), strconv.Itoa(mport)),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int(validity.Seconds())}},
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	must(t, os.WriteFile(cfgFile, data, 0o600))
	p := &pebble{Directory: "https://" + net.JoinHostPort(listen.String(), strconv.Itoa(port)) + "/dir", CABundle: certFile,
		mgmt: "https://" + net.JoinHostPort(listen.String(), strconv.Itoa(mport)), log: &syncBuffer{}}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", startDNS(t, target))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.log.String())
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(p.mgmt + "/roots/0")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				p.roots = x509.NewCertPool()
				p.roots.AppendCertsFromPEM(body)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// selfSigned is a certificate for ip and localhost.
func selfSigned(t *testing.T, ip net.IP) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{ip},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// challengeServers stand in for the proxies' challenge answering: an HTTP
// server answering /.well-known/acme-challenge/<token> and a TLS server
// answering acme-tls/1 handshakes, each asking a reader chosen in turn
// (several proxies reading the one challenges Secret). It returns their
// ports and a count of the challenges answered.
type challengeServers struct {
	HTTPPort, TLSPort int
	mu                sync.Mutex
	readers           []acme.Challenges
	n                 int
	answered          map[string]int
}

// SetReaders sets the readers asked in turn.
func (cs *challengeServers) SetReaders(r ...acme.Challenges) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.readers = r
}

func (cs *challengeServers) next() acme.Challenges {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.readers) == 0 {
		return none{}
	}
	cs.n++
	return cs.readers[cs.n%len(cs.readers)]
}

type none struct{}

func (none) HTTP01(string, string) (string, bool)      { return "", false }
func (none) TLSALPN01(string) (*tls.Certificate, bool) { return nil, false }

func startChallengeServers(t *testing.T) *challengeServers {
	t.Helper()
	cs := &challengeServers{answered: map[string]int{}}
	next := cs.next
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		keyAuth, ok := next().HTTP01(r.Host, token)
		if !ok {
			http.NotFound(w, r)
			return
		}
		cs.count("http-01")
		_, _ = io.WriteString(w, keyAuth)
	})}
	go func() { _ = hs.Serve(hl) }()
	t.Cleanup(func() { _ = hs.Close() })
	tl, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		NextProtos: []string{"acme-tls/1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if !slices.Contains(hello.SupportedProtos, "acme-tls/1") {
				return nil, fmt.Errorf("not an ACME challenge")
			}
			c, ok := next().TLSALPN01(hello.ServerName)
			if !ok {
				return nil, fmt.Errorf("no challenge for %s", hello.ServerName)
			}
			cs.count("tls-alpn-01")
			return c, nil
		},
	})
	must(t, err)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	t.Cleanup(func() { _ = tl.Close() })
	cs.HTTPPort = hl.Addr().(*net.TCPAddr).Port
	cs.TLSPort = tl.Addr().(*net.TCPAddr).Port
	return cs
}

func (cs *challengeServers) count(kind string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.answered[kind]++
}

func (cs *challengeServers) Answered(kind string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.answered[kind]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
