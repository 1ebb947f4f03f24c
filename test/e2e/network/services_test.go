//lint:file-ignore SA1019 the Endpoints API is deprecated upstream but still served and checked here

package network_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/havre/havre/test/framework"
)

// TestServices checks Services end to end on a three-node cluster (the
// pods behind a Service spread over the nodes): the endpoint controllers
// write slices, every node's proxy programs them, and clients on the
// nodes, in pods and outside the cluster reach the pods.
// Subtests named as upstream's [sig-network] conformance specs check the
// same behaviour.
func TestServices(t *testing.T) {
	c := startCluster(t, 3)
	n0 := c.Nodes[0]
	cs := c.Server.Clientset()

	t.Run("Services should serve a basic endpoint from pods", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "basic")
		webDeployment(t, c, ns, "web", 2)
		svc := service(t, c, ns, "web", "web", nil)
		waitEndpoints(t, c, ns, "web", 2)
		// Both replicas answer through the ClusterIP.
		seen := map[string]bool{}
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			code, body, err := n0.Get("http://"+svc.Spec.ClusterIP+"/", 2*time.Second)
			if err == nil && code == 200 {
				seen[strings.TrimSpace(body)] = true
			}
			return len(seen) == 2, nil
		}, "both pods answer through %s (seen %v)", svc.Spec.ClusterIP, seen)
		out := c.Server.MustKubectl(t, "-n", ns, "get", "endpointslices")
		if !strings.Contains(out, "web-") || !strings.Contains(out, "IPv4") || !strings.Contains(out, "8080") {
			t.Errorf("kubectl get endpointslices:\n%s", out)
		}
		out = c.Server.MustKubectl(t, "-n", ns, "get", "endpoints", "web")
		if !strings.Contains(out, ":8080") {
			t.Errorf("kubectl get endpoints:\n%s", out)
		}
	})

	t.Run("Services should be able to create a functioning NodePort service", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "nodeport")
		webDeployment(t, c, ns, "web", 1)
		svc := service(t, c, ns, "web", "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		port := svc.Spec.Ports[0].NodePort
		if port == 0 {
			t.Fatal("no node port allocated")
		}
		if body := getOutside(t, c, n0.URL(port, "/")); !strings.HasPrefix(body, "web web-") {
			t.Errorf("GET through the node port: %q", body)
		}
	})

	t.Run("a ClusterIP Service patched to NodePort gets a node port and answers on it", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "patch")
		webDeployment(t, c, ns, "web", 1)
		service(t, c, ns, "web", "web", nil)
		c.Server.MustKubectl(t, "-n", ns, "patch", "service", "web", "-p", `{"spec":{"type":"NodePort"}}`)
		svc, err := cs.CoreV1().Services(ns).Get(ctx(t), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Ports[0].NodePort == 0 {
			t.Fatalf("patched to NodePort without a node port: %+v", svc.Spec.Ports)
		}
		getOutside(t, c, n0.URL(svc.Spec.Ports[0].NodePort, "/"))
	})

	t.Run("LoadBalancer Services get the nodes' addresses and answer on them", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "lb")
		webDeployment(t, c, ns, "web", 1)
		service(t, c, ns, "web", "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].Port = 8088
		})
		var ingress []corev1.LoadBalancerIngress
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			svc, err := cs.CoreV1().Services(ns).Get(ctx(t), "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			ingress = svc.Status.LoadBalancer.Ingress
			return len(ingress) > 0, nil
		}, "status.loadBalancer.ingress filled")
		var ips []string
		for _, in := range ingress {
			ips = append(ips, in.IP)
		}
		var want []string
		for _, n := range c.Nodes {
			want = append(want, n.IP)
		}
		slices.Sort(want)
		if !slices.Equal(ips, want) {
			t.Fatalf("ingress %v, want every node's address %v", ips, want)
		}
		// Every node serves it, whichever node the pod runs on.
		for _, ip := range ips {
			getOutside(t, c, "http://"+net.JoinHostPort(ip, "8088")+"/")
		}

		// A second Service on the same port gets no address, and is told.
		service(t, c, ns, "web2", "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].Port = 8088
		})
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			svc, err := cs.CoreV1().Services(ns).Get(ctx(t), "web2", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range svc.Status.Conditions {
				if cond.Type == "LoadBalancerPortsError" && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, ns+"/web") {
					return len(svc.Status.LoadBalancer.Ingress) == 0, nil
				}
			}
			return false, nil
		}, "the second LoadBalancer on port 8088 has a condition naming the first")
		if ev := c.Server.MustKubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=web2"); !strings.Contains(ev, ns+"/web") {
			t.Errorf("no Event names the Service holding the port:\n%s", ev)
		}
	})

	t.Run("Services should have session affinity work for service with type clusterIP [LinuxOnly]", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "affinity")
		webDeployment(t, c, ns, "web", 3)
		svc := service(t, c, ns, "web", "web", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP })
		waitEndpoints(t, c, ns, "web", 3)
		first := getFrom(t, n0, "http://"+svc.Spec.ClusterIP+"/")
		for i := range 20 {
			if body := getFrom(t, n0, "http://"+svc.Spec.ClusterIP+"/"); body != first {
				t.Fatalf("request %d went to %q, the first to %q", i, body, first)
			}
		}
	})

	t.Run("Services should have session affinity work for NodePort service [LinuxOnly]", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "npaffinity")
		webDeployment(t, c, ns, "web", 3)
		svc := service(t, c, ns, "web", "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		})
		waitEndpoints(t, c, ns, "web", 3)
		url := n0.URL(svc.Spec.Ports[0].NodePort, "/")
		first := getOutside(t, c, url)
		for i := range 20 {
			if body := getOutside(t, c, url); body != first {
				t.Fatalf("request %d went to %q, the first to %q", i, body, first)
			}
		}
	})

	t.Run("Services should be able to change the type from ExternalName to ClusterIP", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "extname")
		webDeployment(t, c, ns, "web", 1)
		service(t, c, ns, "ext", "", func(s *corev1.Service) {
			s.Spec.Selector, s.Spec.Ports = nil, nil
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "www.example.test"
		})
		patch := `{"spec":{"type":"ClusterIP","externalName":null,"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}`
		svc, err := cs.CoreV1().Services(ns).Patch(ctx(t), "ext", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP == "" {
			t.Fatal("no cluster IP after the change from ExternalName")
		}
		waitEndpoints(t, c, ns, "ext", 1)
		getFrom(t, n0, "http://"+svc.Spec.ClusterIP+"/")
	})

	t.Run("EndpointsController should create and delete Endpoints for a Service with a selector that matches no pods", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "epnone")
		service(t, c, ns, "none", "nothing", nil)
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			_, err := cs.CoreV1().Endpoints(ns).Get(ctx(t), "none", metav1.GetOptions{})
			return err == nil, nil
		}, "Endpoints of a Service that selects no pod")
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=none"})
			return err == nil && len(list.Items) == 1 && len(list.Items[0].Endpoints) == 0, nil
		}, "an empty EndpointSlice of a Service that selects no pod")
		if err := cs.CoreV1().Services(ns).Delete(ctx(t), "none", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			_, err := cs.CoreV1().Endpoints(ns).Get(ctx(t), "none", metav1.GetOptions{})
			list, lerr := cs.DiscoveryV1().EndpointSlices(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=none"})
			return err != nil && lerr == nil && len(list.Items) == 0, nil
		}, "Endpoints and EndpointSlices removed with their Service")
	})

	t.Run("EndpointSliceMirroring should mirror a custom Endpoints resource through create update and delete", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "mirror")
		webDeployment(t, c, ns, "web", 1)
		pod := podsOf(t, c, ns, "web")[0]
		svc := service(t, c, ns, "custom", "", func(s *corev1.Service) { s.Spec.Selector = nil; s.Spec.Ports[0].TargetPort = intstr.FromInt32(8080) })
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: pod.Status.PodIP}}, Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}}}}}
		if _, err := cs.CoreV1().Endpoints(ns).Create(ctx(t), ep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		mirrored := func(ip string) func() (bool, error) {
			return func() (bool, error) {
				list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=custom"})
				if err != nil {
					return false, err
				}
				if ip == "" {
					return len(list.Items) == 0, nil
				}
				return len(list.Items) == 1 && len(list.Items[0].Endpoints) == 1 && list.Items[0].Endpoints[0].Addresses[0] == ip &&
					list.Items[0].Labels["endpointslice.kubernetes.io/managed-by"] == "endpointslicemirroring-controller.k8s.io", nil
			}
		}
		framework.Eventually(t, 30*time.Second, mirrored(pod.Status.PodIP), "the Endpoints mirrored")
		// Mirrored slices are proxied like any other.
		getFrom(t, n0, "http://"+svc.Spec.ClusterIP+"/")
		ep.Subsets[0].Addresses[0].IP = "10.42.200.9"
		if _, err := cs.CoreV1().Endpoints(ns).Update(ctx(t), ep, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, mirrored("10.42.200.9"), "the update mirrored")
		if err := cs.CoreV1().Endpoints(ns).Delete(ctx(t), "custom", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, mirrored(""), "the mirrored slice removed with the Endpoints")
	})

	t.Run("externalTrafficPolicy Local keeps the client's address and the health check node port answers", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "etp")
		webDeployment(t, c, ns, "web", 1)
		svc := service(t, c, ns, "web", "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.Ports[0].Port = 8089
		})
		local := c.Node(podsOf(t, c, ns, "web")[0].Spec.NodeName)
		if body := strings.TrimSpace(getOutside(t, c, local.URL(svc.Spec.Ports[0].NodePort, "/clientip"))); body != c.TestAddr() {
			t.Errorf("the pod saw the client as %q, want the client's own %s", body, c.TestAddr())
		}
		hc := svc.Spec.HealthCheckNodePort
		if hc == 0 {
			t.Fatal("no health check node port")
		}
		// Only the node with the endpoint is a LoadBalancer address; the
		// others answer 503 on the health check node port.
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			got, err := cs.CoreV1().Services(ns).Get(ctx(t), "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			in := got.Status.LoadBalancer.Ingress
			return len(in) == 1 && in[0].IP == local.IP, nil
		}, "the LoadBalancer lists only %s, where the endpoint is", local.Name)
		for _, n := range c.Nodes {
			if n == local {
				continue
			}
			framework.Eventually(t, 20*time.Second, func() (bool, error) {
				resp, err := c.TestHTTPClient(2 * time.Second).Get(n.URL(hc, "/"))
				if err != nil {
					return false, nil
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return false, fmt.Errorf("health check on %s, which has no endpoint, answered 200", n.Name)
				}
				return resp.StatusCode == 503, nil
			}, "the health check node port of %s, which has no endpoint, answers 503", n.Name)
		}
		body := getOutside(t, c, local.URL(hc, "/"))
		var doc struct {
			Service        struct{ Namespace, Name string } `json:"service"`
			LocalEndpoints int                              `json:"localEndpoints"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.LocalEndpoints != 1 || doc.Service.Name != "web" || doc.Service.Namespace != ns {
			t.Errorf("health check answer %q (%v)", body, err)
		}
		// No local endpoint: 503.
		c.Server.MustKubectl(t, "-n", ns, "scale", "deployment/web", "--replicas=0")
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			resp, err := c.TestHTTPClient(2 * time.Second).Get(local.URL(hc, "/"))
			if err != nil {
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == 503, nil
		}, "the health check node port answers 503 without local endpoints")
	})

	t.Run("a pod reaches itself through its Service", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "hairpin")
		webDeployment(t, c, ns, "web", 1)
		svc := service(t, c, ns, "web", "web", nil)
		waitEndpoints(t, c, ns, "web", 1)
		pod := podsOf(t, c, ns, "web")[0]
		var out string
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			var err error
			out, err = execIn(t, c, ns, pod.Name, "get", "http://"+svc.Spec.ClusterIP+"/")
			return err == nil, nil
		}, "the pod reaches itself through %s", svc.Spec.ClusterIP)
		if strings.TrimSpace(out) != "web "+pod.Name {
			t.Errorf("hairpin answer %q, want the pod itself", out)
		}
	})

	t.Run("a Service without endpoints refuses connections at once", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "noep")
		svc := service(t, c, ns, "empty", "nothing", nil)
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			start := time.Now()
			conn, err := n0.DialContext(ctx(t), "tcp", net.JoinHostPort(svc.Spec.ClusterIP, "80"))
			if err == nil {
				conn.Close()
				return false, fmt.Errorf("a Service without endpoints accepted a connection")
			}
			// Refused, not timed out.
			return framework.ErrRefused(err) && time.Since(start) < time.Second, nil
		}, "connections to %s refused", svc.Spec.ClusterIP)
	})

	t.Run("Services should serve endpoints on same port and different protocols", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "proto")
		webDeployment(t, c, ns, "web", 1, "-udp", ":8080")
		svc := service(t, c, ns, "web", "web", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "tcp", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
				{Name: "udp", Port: 80, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(8080)},
			}
		})
		waitEndpoints(t, c, ns, "web", 1)
		getFrom(t, n0, "http://"+svc.Spec.ClusterIP+"/")
		var reply string
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			conn, err := n0.DialContext(ctx(t), "udp", net.JoinHostPort(svc.Spec.ClusterIP, "80"))
			if err != nil {
				return false, nil
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			if _, err := conn.Write([]byte("hello")); err != nil {
				return false, nil
			}
			buf := make([]byte, 512)
			k, err := conn.Read(buf)
			reply = string(buf[:k])
			return err == nil, nil
		}, "UDP through %s:80", svc.Spec.ClusterIP)
		if !strings.HasPrefix(reply, "web web-") {
			t.Errorf("UDP reply %q", reply)
		}
	})

	t.Run("kubectl expose and port-forward to a Service", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "expose")
		webDeployment(t, c, ns, "web", 1)
		c.Server.MustKubectl(t, "-n", ns, "expose", "deployment/web", "--port=80", "--target-port=8080", "--name=exposed")
		svc, err := cs.CoreV1().Services(ns).Get(ctx(t), "exposed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitEndpoints(t, c, ns, "exposed", 1)
		getFrom(t, n0, "http://"+svc.Spec.ClusterIP+"/")

		pfCtx, cancel := context.WithCancel(ctx(t))
		defer cancel()
		cmd := c.Server.KubectlCommand(pfCtx, "-n", ns, "port-forward", "svc/exposed", ":80")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		// "Forwarding from 127.0.0.1:PORT -> 8080"
		f := strings.Fields(line)
		if err != nil || len(f) < 3 {
			t.Fatalf("kubectl port-forward said %q (%v)", line, err)
		}
		body := getOutside(t, c, "http://"+f[2]+"/")
		if !strings.HasPrefix(body, "web web-") {
			t.Errorf("GET through port-forward: %q", body)
		}
	})

	t.Run("a rolling update behind a Service drops no request", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "rolling")
		webDeployment(t, c, ns, "web", 2, "-term-delay", "2s")
		svc := service(t, c, ns, "web", "web", nil)
		waitEndpoints(t, c, ns, "web", 2)
		url := "http://" + svc.Spec.ClusterIP + "/"
		getFrom(t, n0, url)
		client := n0.HTTPClient(5 * time.Second)

		var mu sync.Mutex
		var failures []string
		done := make(chan struct{})
		stop := make(chan struct{})
		const requests = 500
		go func() {
			defer close(done)
			deadline := time.Now().Add(3 * time.Minute)
			for i := 0; i < requests && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond) // pacing the bounded loop, not synchronisation
			}
		}()
		c.Server.MustKubectl(t, "-n", ns, "set", "env", "deployment/web", "ROLL=1")
		c.Server.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=180s")
		<-done
		close(stop)
		if len(failures) > 0 {
			t.Errorf("%d of %d requests failed during the rollout: %v", len(failures), requests, failures[:min(len(failures), 10)])
		}
	})

	t.Run("Services should complete a service status lifecycle", func(t *testing.T) {
		ns := framework.NewNamespace(t, cs, "status")
		service(t, c, ns, "st", "x", nil)
		patch := `{"status":{"conditions":[{"type":"StatusUpdate","status":"True","reason":"E2E","message":"Set from e2e test","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`
		if _, err := cs.CoreV1().Services(ns).Patch(ctx(t), "st", types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			t.Fatal(err)
		}
		svc, err := cs.CoreV1().Services(ns).Get(ctx(t), "st", metav1.GetOptions{})
		if err != nil || len(svc.Status.Conditions) != 1 || svc.Status.Conditions[0].Type != "StatusUpdate" {
			t.Fatalf("status after the patch: %+v, %v", svc.Status, err)
		}
	})

	t.Run("API Server should have Endpoints and EndpointSlices pointing to API Server", func(t *testing.T) {
		ep, err := cs.CoreV1().Endpoints("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || ep.Subsets[0].Addresses[0].IP != n0.IP ||
			ep.Subsets[0].Ports[0].Port != int32(c.Server.Port()) {
			t.Errorf("kubernetes endpoints %+v, want %s:%d", ep.Subsets, n0.IP, c.Server.Port())
		}
		slice, err := cs.DiscoveryV1().EndpointSlices("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != n0.IP {
			t.Errorf("kubernetes EndpointSlice %+v", slice.Endpoints)
		}
		// And a pod reaches the API through the kubernetes Service.
		kube, err := cs.CoreV1().Services("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns := framework.NewNamespace(t, cs, "apisvc")
		webDeployment(t, c, ns, "web", 1)
		pod := podsOf(t, c, ns, "web")[0]
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			out, _ := execIn(t, c, ns, pod.Name, "get", "https://"+kube.Spec.ClusterIP+":443/healthz")
			// The pod does not trust the cluster CA: a TLS error proves the
			// connection reached the API server's TLS listener.
			return strings.Contains(out, "certificate") || strings.Contains(out, "ok"), nil
		}, "a pod reaches the API server through the kubernetes Service")
	})
}
