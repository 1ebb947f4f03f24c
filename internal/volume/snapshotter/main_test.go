package snapshotter

import (
	"os"
	"testing"
)

// TestMain turns off client-go's WatchList for the fake snapshot
// clientset: its informers do not tell the reflector that the fake
// cannot stream a list, so the reflector would wait for a bookmark that
// never comes.
func TestMain(m *testing.M) {
	os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	os.Exit(m.Run())
}
