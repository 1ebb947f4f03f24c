package rbac_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

const identitiesWebImage = "havre.local/e2e-web:v1"

// TestComponentIdentities: Havre's controllers, scheduler and embedded
// agent run as their own identities with upstream's roles, and the whole
// cluster still works: a Deployment rolls out, a StatefulSet's claims are
// bound and its pods run. A controller's identity is refused what its role
// does not grant, and the server refused its own components nothing (the
// framework fails every e2e test whose server logged such a denial).
func TestComponentIdentities(t *testing.T) {
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/web", identitiesWebImage)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs("--node-name", "identities-e2e"))
	cs := s.Clientset()

	t.Run("can-i", func(t *testing.T) {
		// kubectl resolves volumesnapshotcontents.snapshot.storage.k8s.io
		// through discovery, which serves a definition's group shortly
		// after the server is ready: until then can-i asks about nothing
		// and answers "no".
		framework.Eventually(t, 60*time.Second, func() (bool, error) {
			_, err := cs.Discovery().ServerResourcesForGroupVersion("snapshot.storage.k8s.io/v1")
			return err == nil, nil
		}, "snapshot.storage.k8s.io/v1 in discovery")
		for _, tc := range []struct {
			as, verb, resource, want string
		}{
			{"system:serviceaccount:kube-system:deployment-controller", "create", "secrets", "no"},
			{"system:serviceaccount:kube-system:deployment-controller", "create", "replicasets.apps", "yes"},
			{"system:serviceaccount:kube-system:deployment-controller", "create", "pods", "no"},
			{"system:serviceaccount:kube-system:replicaset-controller", "create", "pods", "yes"},
			{"system:serviceaccount:kube-system:statefulset-controller", "create", "persistentvolumeclaims", "yes"},
			{"system:serviceaccount:kube-system:statefulset-controller", "delete", "nodes", "no"},
			{"system:serviceaccount:kube-system:snapshot-controller", "create", "volumesnapshotcontents.snapshot.storage.k8s.io", "yes"},
			{"system:serviceaccount:kube-system:service-lb-controller", "update", "services/status", "yes"},
			{"system:serviceaccount:kube-system:service-lb-controller", "create", "pods", "no"},
			{"system:kube-scheduler", "create", "pods/binding", "yes"},
			{"system:kube-scheduler", "create", "secrets", "no"},
			{"system:kube-controller-manager", "list", "pods", "yes"},
			{"system:kube-controller-manager", "create", "pods", "no"},
		} {
			args := []string{"auth", "can-i", "--as=" + tc.as, tc.verb, tc.resource, "-n", "default"}
			if res, sub, ok := strings.Cut(tc.resource, "/"); ok {
				args = []string{"auth", "can-i", "--as=" + tc.as, tc.verb, res, "--subresource=" + sub, "-n", "default"}
			}
			out, _, _ := s.Kubectl(args...)
			if got := strings.TrimSpace(out); got != tc.want {
				t.Errorf("kubectl auth can-i --as=%s %s %s: %q, want %q", tc.as, tc.verb, tc.resource, got, tc.want)
			}
		}
		out, _, _ := s.Kubectl("auth", "can-i", "--as=system:node:identities-e2e", "--as-group=system:nodes", "update", "nodes", "--subresource=status")
		if got := strings.TrimSpace(out); got != "yes" {
			t.Errorf("the node may not update its status: %q", got)
		}
	})

	t.Run("the controllers' ServiceAccounts exist", func(t *testing.T) {
		for _, name := range []string{"deployment-controller", "generic-garbage-collector", "snapshot-controller", "service-lb-controller"} {
			framework.Eventually(t, 30*time.Second, func() (bool, error) {
				_, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx(t), name, metaGet)
				return err == nil, nil
			}, "ServiceAccount kube-system/%s", name)
		}
	})

	s.WaitNodeReady(t, "identities-e2e", 60*time.Second)
	s.ImportImage(t, archive)
	ns := framework.NewNamespace(t, cs, "identities")

	t.Run("a Deployment rolls out", func(t *testing.T) {
		s.MustKubectlStdin(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: web, image: `+identitiesWebImage+`, imagePullPolicy: Never}
`, "-n", ns, "apply", "-f", "-")
		out := s.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=120s")
		if !strings.Contains(out, "successfully rolled out") {
			t.Errorf("rollout status: %s", out)
		}
		// A new revision: a second ReplicaSet, the old one scaled down.
		s.MustKubectl(t, "-n", ns, "set", "env", "deployment/web", "REVISION=2")
		out = s.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=120s")
		if !strings.Contains(out, "successfully rolled out") {
			t.Errorf("rollout status: %s", out)
		}
	})

	t.Run("a StatefulSet's claims are bound", func(t *testing.T) {
		s.MustKubectlStdin(t, `apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: `+identitiesWebImage+`
        imagePullPolicy: Never
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
`, "-n", ns, "apply", "-f", "-")
		out := s.MustKubectl(t, "-n", ns, "rollout", "status", "statefulset/db", "--timeout=120s")
		if !strings.Contains(out, "roll out complete") && !strings.Contains(out, "rolling update complete") {
			t.Errorf("rollout status: %s", out)
		}
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), "data-db-0", metaGet)
		if err != nil || c.Status.Phase != corev1.ClaimBound {
			t.Fatalf("claim data-db-0: %v %v", c.Status.Phase, err)
		}
		// Deleting the namespace goes through the namespace controller,
		// the garbage collector and the protection controllers.
		if err := cs.CoreV1().Namespaces().Delete(ctx(t), ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 120*time.Second, func() (bool, error) {
			_, err := cs.CoreV1().Namespaces().Get(ctx(t), ns, metaGet)
			return err != nil, nil
		}, "namespace %s deleted", ns)
	})

	if d := s.ComponentDenials(); len(d) > 0 {
		t.Errorf("RBAC refused Havre's own components:\n%s", strings.Join(d, "\n"))
	}
}
