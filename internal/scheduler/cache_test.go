package scheduler

import (
	"testing"

	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestCacheSnapshot(t *testing.T) {
	c, s := NewCache(), NewSnapshot()
	c.AddNode(testutil.Node("n0", "4", "8Gi", 10))
	c.AddNode(testutil.Node("n1", "4", "8Gi", 10))
	c.UpdateSnapshot(s)
	if s.NumNodes() != 2 {
		t.Fatalf("snapshot has %d nodes, want 2", s.NumNodes())
	}
	n0, _ := s.Get("n0")

	assumed := testutil.OnNode(testutil.Pod("p", "1", "1Gi"), "n0")
	if err := c.AssumePod(assumed); err != nil {
		t.Fatal(err)
	}
	if !c.IsAssumed(assumed) {
		t.Fatal("pod not assumed")
	}
	if n0.Requested.MilliCPU != 0 {
		t.Fatal("the snapshot changed before UpdateSnapshot")
	}
	c.UpdateSnapshot(s)
	if n0.Requested.MilliCPU != 1000 || len(n0.Pods) != 1 {
		t.Fatalf("n0 after assume: %d mCPU, %d pods", n0.Requested.MilliCPU, len(n0.Pods))
	}

	// The informer confirms the pod bound elsewhere.
	bound := testutil.OnNode(testutil.Pod("p", "1", "1Gi"), "n1")
	if err := c.AddPod(bound); err != nil {
		t.Fatal(err)
	}
	if c.IsAssumed(bound) {
		t.Fatal("pod still assumed after it was seen bound")
	}
	c.UpdateSnapshot(s)
	n1, _ := s.Get("n1")
	if len(n0.Pods) != 0 || len(n1.Pods) != 1 {
		t.Fatalf("pods n0=%d n1=%d, want 0 and 1", len(n0.Pods), len(n1.Pods))
	}

	// Forget undoes an assumption.
	other := testutil.OnNode(testutil.Pod("q", "1", ""), "n0")
	_ = c.AssumePod(other)
	_ = c.ForgetPod(other)
	c.UpdateSnapshot(s)
	if len(n0.Pods) != 0 {
		t.Fatalf("forgotten pod still counted on n0")
	}

	// A removed node leaves the snapshot; its pods stay in the cache.
	c.RemoveNode(testutil.Node("n1", "4", "8Gi", 10))
	c.UpdateSnapshot(s)
	if s.NumNodes() != 1 || c.PodCount() != 1 {
		t.Fatalf("nodes %d pods %d after removing n1", s.NumNodes(), c.PodCount())
	}
	if _, err := s.Get("n1"); err == nil {
		t.Fatal("n1 still in the snapshot")
	}
	if err := c.RemovePod(bound); err != nil {
		t.Fatal(err)
	}
	if c.PodCount() != 0 {
		t.Fatal("pod not removed")
	}
}

func TestCacheHeartbeatDoesNotCopy(t *testing.T) {
	c, s := NewCache(), NewSnapshot()
	node := testutil.Node("n0", "4", "8Gi", 10)
	c.AddNode(node)
	c.UpdateSnapshot(s)
	gen := s.generation
	beat := node.DeepCopy()
	beat.ResourceVersion = "2"
	c.UpdateNode(node, beat)
	c.UpdateSnapshot(s)
	if s.generation != gen {
		t.Error("a heartbeat made the snapshot copy the node again")
	}
	relabelled := beat.DeepCopy()
	relabelled.Labels["x"] = "y"
	c.UpdateNode(beat, relabelled)
	c.UpdateSnapshot(s)
	if n, _ := s.Get("n0"); n.Node().Labels["x"] != "y" {
		t.Error("a label change did not reach the snapshot")
	}
}
