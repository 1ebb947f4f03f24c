package nodeipam

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNewAllocator(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		bits int
		ok   bool
	}{
		{"10.42.0.0/16", 24, true},
		{"10.42.0.0/24", 24, true},
		{"10.42.0.0/16", 31, false},
		{"10.42.0.0/16", 8, false},
		{"10.0.0.0/8", 30, false}, // 4M subnets
		{"fd00::/48", 64, false},
		{"nonsense", 24, false},
	} {
		_, err := NewAllocator(tc.cidr, tc.bits)
		if (err == nil) != tc.ok {
			t.Errorf("NewAllocator(%s, %d): %v, want ok=%v", tc.cidr, tc.bits, err, tc.ok)
		}
	}
}

func TestAllocator(t *testing.T) {
	a, err := NewAllocator("10.42.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Occupy("10.42.1.0/24"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.43.0.0/24", "10.42.0.0/25", "x"} {
		if err := a.Occupy(bad); err == nil {
			t.Errorf("Occupy(%s) succeeded", bad)
		}
	}
	var got []string
	for range 3 {
		c, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []string{"10.42.0.0/24", "10.42.2.0/24", "10.42.3.0/24"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
		t.Errorf("Allocate on a full range: %v", err)
	}
	a.Release("10.42.2.0/24")
	a.Release("192.168.0.0/24") // ignored
	if c, err := a.Allocate(); err != nil || c != "10.42.2.0/24" {
		t.Errorf("Allocate after Release = %s, %v", c, err)
	}
}

func TestControllerAssignsCIDRs(t *testing.T) {
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "has"}, Spec: corev1.NodeSpec{PodCIDR: "10.42.0.0/24", PodCIDRs: []string{"10.42.0.0/24"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new"}},
	)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, DefaultClusterCIDR, DefaultNodeMaskV4)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go c.Run(ctx, 1)

	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, "new", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.PodCIDR != "" {
			if n.Spec.PodCIDR != "10.42.1.0/24" || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
				t.Fatalf("node spec %+v, want podCIDR 10.42.1.0/24 (10.42.0.0/24 is taken)", n.Spec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no pod CIDR was assigned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	has, _ := client.CoreV1().Nodes().Get(ctx, "has", metav1.GetOptions{})
	if has.Spec.PodCIDR != "10.42.0.0/24" {
		t.Errorf("existing CIDR changed to %s", has.Spec.PodCIDR)
	}
}
