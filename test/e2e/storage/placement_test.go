package storage_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// TestPlacement: on two nodes, a pod whose claim is bound to a local volume
// goes to the node holding the volume, whatever else the scheduler would
// prefer.
func TestPlacement(t *testing.T) {
	framework.RequireNodeAgent(t)
	web := framework.BuildImage(t, "test/images/web", webImage)
	c := framework.StartCluster(t, 2)
	c.ImportImage(t, web)
	s, cs := c.Server, c.Server.Clientset()
	ns := framework.NewNamespace(t, cs, "place")

	for _, n := range c.Nodes {
		// The first consumer, pinned to node n, gets the volume made there.
		claimName := "on-" + n.Name
		apply(t, s, ns, claim(claimName, "", "16Mi", ""))
		apply(t, s, ns, claimPod("first-"+n.Name, claimName, fmt.Sprintf("  nodeSelector: {kubernetes.io/hostname: %s}\n", n.Name)))
		waitPod(t, s, ns, "first-"+n.Name)
		podExec(t, s, ns, "first-"+n.Name, "write", "/data/node", n.Name)
		deletePod(t, cs, ns, "first-"+n.Name)

		// A Deployment with the claim and no node selector follows it.
		apply(t, s, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: d-%[1]s}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: d-%[1]s}}
  template:
    metadata: {labels: {app: d-%[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %[2]s
        imagePullPolicy: Never
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: %[3]s}
`, n.Name, webImage, claimName))
		var pod corev1.Pod
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			l, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "app=d-" + n.Name})
			if err != nil || len(l.Items) != 1 || l.Items[0].Spec.NodeName == "" {
				return false, nil
			}
			pod = l.Items[0]
			return true, nil
		}, "the deployment's pod scheduled")
		if pod.Spec.NodeName != n.Name {
			t.Errorf("pod %s with the claim made on %s was placed on %s", pod.Name, n.Name, pod.Spec.NodeName)
			continue
		}
		waitPod(t, s, ns, pod.Name)
		if got := podExec(t, s, ns, pod.Name, "cat", "/data/node"); got != n.Name {
			t.Errorf("the deployment's pod reads %q, want %s", got, n.Name)
		}
	}
}
