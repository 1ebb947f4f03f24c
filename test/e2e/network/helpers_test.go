package network_test

import (
	"context"
	"io"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/havre/havre/test/framework"
)

const webImage = "havre.test/web:e2e"

// startCluster starts a cluster of n nodes with the web image on every
// node.
func startCluster(t *testing.T, n int, opts ...framework.Option) *framework.Cluster {
	t.Helper()
	c := framework.StartCluster(t, n, opts...)
	c.ImportImage(t, framework.BuildImage(t, "test/images/web", webImage))
	return c
}

func ctx(t *testing.T) context.Context { return framework.RequestContext(t) }

// webDeployment creates a Deployment of the web image, labelled app=name,
// with extra arguments for the program, and waits for its pods to be Ready.
func webDeployment(t *testing.T, c *framework.Cluster, ns, name string, replicas int32, args ...string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64(5)),
					Containers: []corev1.Container{{
						Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever, Args: args,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1},
					}},
				},
			},
		},
	}
	if _, err := c.Server.Clientset().AppsV1().Deployments(ns).Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Server.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/"+name, "--timeout=120s")
	return d
}

// service creates a Service selecting app=selector on port 80 → the
// container's 8080, changed by mutate.
func service(t *testing.T, c *framework.Cluster, ns, name, selector string, mutate func(*corev1.Service)) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": selector},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if mutate != nil {
		mutate(svc)
	}
	out, err := c.Server.Clientset().CoreV1().Services(ns).Create(ctx(t), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readyEndpoints counts the ready endpoints of a Service's slices.
func readyEndpoints(t *testing.T, c *framework.Cluster, ns, name string) int {
	t.Helper()
	list, err := c.Server.Clientset().DiscoveryV1().EndpointSlices(ns).List(ctx(t), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				n++
			}
		}
	}
	return n
}

// waitEndpoints waits until a Service has want ready endpoints.
func waitEndpoints(t *testing.T, c *framework.Cluster, ns, name string, want int) {
	t.Helper()
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		return readyEndpoints(t, c, ns, name) == want, nil
	}, "service %s/%s has %d ready endpoints", ns, name, want)
}

// getFrom GETs url from a node until it answers 200 (the proxy may take a
// moment to program a new Service) and returns the body.
func getFrom(t *testing.T, n *framework.Node, url string) string {
	t.Helper()
	var body string
	framework.Eventually(t, 20*time.Second, func() (bool, error) {
		code, b, err := n.Get(url, 2*time.Second)
		body = b
		return err == nil && code == 200, nil
	}, "GET %s from %s", url, n.Name)
	return body
}

// getOutside GETs url from the test process (outside the cluster) until it
// answers 200 and returns the body.
func getOutside(t *testing.T, c *framework.Cluster, url string) string {
	t.Helper()
	var body string
	client := c.TestHTTPClient(2 * time.Second)
	framework.Eventually(t, 20*time.Second, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		body = string(data)
		return err == nil && resp.StatusCode == 200, nil
	}, "GET %s from outside", url)
	return body
}

// podsOf lists the pods of app=name.
func podsOf(t *testing.T, c *framework.Cluster, ns, name string) []corev1.Pod {
	t.Helper()
	list, err := c.Server.Clientset().CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// execIn runs a command in a pod's container and returns its output.
func execIn(t *testing.T, c *framework.Cluster, ns, pod string, cmd ...string) (string, error) {
	t.Helper()
	out, errOut, err := c.Server.Kubectl(append([]string{"-n", ns, "exec", pod, "--"}, cmd...)...)
	if err != nil {
		return out + errOut, err
	}
	return out, nil
}
