package podnet

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"net/netip"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/havre/havre/internal/network/netnstest"
)

// nftJSON lists a table with Debian's nft in the namespace, as a reader
// would see it.
func nftJSON(t *testing.T, ns netns.NsHandle, table string) (string, error) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft (Debian's nftables) is not installed")
	}
	var out []byte
	err = netnstest.Do(ns, func() error {
		var err error
		out, err = exec.Command(nft, "-j", "list", "table", "ip", table).CombinedOutput()
		return err
	})
	return string(out), err
}

func TestEnsureMasquerade(t *testing.T) {
	ns, _ := netnstest.New(t)
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	table := MasqueradeTable("hvtest0")
	for range 2 { // idempotent: the second run replaces the rule
		if err := EnsureMasquerade(conn, table, netip.MustParsePrefix("10.42.0.0/16")); err != nil {
			t.Fatal(err)
		}
	}
	out, err := nftJSON(t, ns, table)
	if err != nil {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j output: %v\n%s", err, out)
	}
	var rules []string
	for _, item := range doc.Nftables {
		if r, ok := item["rule"]; ok {
			rules = append(rules, string(r))
		}
	}
	if len(rules) != 1 {
		t.Fatalf("%d rules, want 1:\n%s", len(rules), out)
	}
	for _, want := range []string{`"saddr"`, `"daddr"`, `"10.42.0.0"`, `"224.0.0.0"`, `"masquerade"`} {
		if !strings.Contains(rules[0], want) {
			t.Errorf("rule lacks %s: %s", want, rules[0])
		}
	}
	if err := RemoveTable(conn, table); err != nil {
		t.Fatal(err)
	}
	if out, err := nftJSON(t, ns, table); err == nil {
		t.Errorf("table still listed after RemoveTable:\n%s", out)
	}
	if err := RemoveTable(conn, table); err != nil {
		t.Errorf("removing a missing table: %v", err)
	}
}
