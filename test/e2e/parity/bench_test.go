package parity_test

import (
	"fmt"
	"strings"
	"testing"
)

// manifest200 is a 200-object manifest of a small application's kinds: 80
// ConfigMaps, 40 Secrets, 40 Deployments and 40 Services, in namespace ns.
// rev changes every object's content.
func manifest200(ns string, rev int) string {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "---\n%s", configMapYAML(ns, fmt.Sprintf("cfg-%d", i), map[string]string{"rev": fmt.Sprint(rev), "i": fmt.Sprint(i)}))
		fmt.Fprintf(&b, "---\n%s", configMapYAML(ns, fmt.Sprintf("env-%d", i), map[string]string{"rev": fmt.Sprint(rev)}))
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: sec-%d\n  namespace: %s\nstringData:\n  password: \"p%d\"\n", i, ns, rev)
		fmt.Fprintf(&b, "---\n%s", deploymentYAML(ns, fmt.Sprintf("app-%d", i), fmt.Sprintf("app:%d", rev), 2))
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-%d\n  namespace: %s\nspec:\n  selector: {app: app-%d}\n  ports:\n  - port: 80\n    targetPort: %d\n", i, ns, i, 8000+rev)
	}
	return b.String()
}

// BenchmarkApply200 measures `kubectl apply -f` of a 200-object manifest,
// client-side and server-side, creating (first apply into an empty
// namespace) and updating (every object changed). Each op is one kubectl
// run, so the figure includes kubectl's own start and discovery.
//
//	go test ./test/e2e/parity -run '^$' -bench Apply200 -benchtime 5x
func BenchmarkApply200(b *testing.B) {
	if testing.Short() {
		b.Skip("e2e benchmark")
	}
	s := frameworkServer(b)
	seq := 0 // namespaces are unique across the runs of each sub-benchmark
	for _, mode := range []struct {
		name  string
		extra []string
	}{
		{"client-side", nil},
		{"server-side", []string{"--server-side"}},
	} {
		for _, phase := range []string{"create", "update"} {
			b.Run(mode.name+"/"+phase, func(b *testing.B) {
				for range b.N {
					seq++
					ns := fmt.Sprintf("bench-%s-%s-%d", strings.Split(mode.name, "-")[0], phase, seq)
					b.StopTimer()
					kubectl(b, s, "", "create", "namespace", ns)
					if phase == "update" {
						kubectl(b, s, manifest200(ns, 1), append([]string{"apply", "-f", "-"}, mode.extra...)...)
					}
					m := manifest200(ns, 2)
					b.StartTimer()
					out := kubectl(b, s, m, append([]string{"apply", "-f", "-"}, mode.extra...)...)
					b.StopTimer()
					if n := len(lines(out)); n != 200 {
						b.Fatalf("apply printed %d lines, want 200", n)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/apply")
			})
		}
	}
}
