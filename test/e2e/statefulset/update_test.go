package statefulset_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpdateResendingClaimTemplates: a client that resends a set's claim
// templates as its manifest has them — without the defaults the server
// stored (volumeMode, status.phase) but with apiVersion and kind, as charts
// such as Bitnami's PostgreSQL write them — changes nothing the API forbids,
// so the update (helm upgrade's patch, kubectl apply) is accepted, as
// kube-apiserver accepts it.
func TestUpdateResendingClaimTemplates(t *testing.T) {
	s := startServer(t)
	ns := newNamespace(t, s.Clientset())
	manifest := func(image string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: ` + image + `
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - apiVersion: v1
    kind: PersistentVolumeClaim
    metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`
	}
	dir := t.TempDir()
	write := func(image string) string {
		p := filepath.Join(dir, "db.yaml")
		if err := os.WriteFile(p, []byte(manifest(image)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s.MustKubectl(t, "-n", ns, "apply", "-f", write("registry.example/db:1"))
	stored := s.MustKubectl(t, "-n", ns, "get", "statefulset", "db", "-o", "jsonpath={.spec.volumeClaimTemplates[0].spec.volumeMode}/{.spec.volumeClaimTemplates[0].status.phase}")
	if stored != "Filesystem/Pending" {
		t.Fatalf("stored claim template volumeMode/phase = %q, want the defaults Filesystem/Pending", stored)
	}

	// A strategic merge patch that resends the templates as written.
	patch := `{"spec":{"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}}`
	for _, typ := range []string{"strategic", "merge"} {
		s.MustKubectl(t, "-n", ns, "patch", "statefulset", "db", "--type", typ, "-p", patch)
	}
	// An apply of a new image (what helm upgrade sends, three-way).
	s.MustKubectl(t, "-n", ns, "apply", "-f", write("registry.example/db:2"))
	if got := s.MustKubectl(t, "-n", ns, "get", "statefulset", "db", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != "registry.example/db:2" {
		t.Errorf("image after apply = %q", got)
	}
	// A real change of the templates is still refused.
	_, out, err := s.Kubectl("-n", ns, "patch", "statefulset", "db", "--type", "merge", "-p",
		`{"spec":{"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"2Gi"}}}}]}}`)
	if err == nil || !strings.Contains(out, "updates to statefulset spec for fields other than") {
		t.Errorf("changing a claim template: err %v, output %q; want the Forbidden error", err, out)
	}
}
