package ingress

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/network/ingress/routes"
)

func node(name, ip, proxy string, ready bool) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{routes.NodeLabel: proxy}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.1"}, {Type: corev1.NodeInternalIP, Address: ip}}}}
}

func TestStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := networkingv1.PathTypePrefix
	objs := []any{
		node("b", "10.0.0.2", "true", true), node("a", "10.0.0.1", "true", true),
		node("off", "10.0.0.3", "false", true), node("down", "10.0.0.4", "true", false),
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "havre", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
			Spec: networkingv1.IngressClassSpec{Controller: routes.IngressController}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "mine", Generation: 1,
			Annotations: map[string]string{"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers \"X: y\";"}}, Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}}}}}}}}}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "theirs"}, Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx")}},
	}
	client := fake.NewClientset()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Node:
			_, err = client.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
		case *networkingv1.IngressClass:
			_, err = client.NetworkingV1().IngressClasses().Create(ctx, o, metav1.CreateOptions{})
		case *networkingv1.Ingress:
			_, err = client.NetworkingV1().Ingresses(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(10)
	c, err := New(client, factory, rec)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go c.Run(ctx, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ing, _ := client.NetworkingV1().Ingresses("ns").Get(ctx, "mine", metav1.GetOptions{})
		got := ing.Status.LoadBalancer.Ingress
		if len(got) == 2 && got[0].IP == "10.0.0.1" && got[1].IP == "10.0.0.2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]bool{
		`Warning UnsupportedBackend resource backend Bucket "b" is not supported: only Service backends are served (the path is left out)`: false,
		"Warning UnsupportedAnnotation": false,
	}
	for range want {
		select {
		case e := <-rec.Events:
			if strings.HasPrefix(e, "Warning UnsupportedAnnotation ") && strings.Contains(e, "configuration-snippet") {
				e = "Warning UnsupportedAnnotation"
			}
			if _, ok := want[e]; !ok {
				t.Errorf("unexpected event: %s", e)
			}
			want[e] = true
		case <-time.After(5 * time.Second):
			t.Errorf("events missing: %v", want)
		}
	}
	// One worker takes keys in the order they came: once an Ingress
	// created now has its status, "theirs" (there from the start) has been
	// seen too.
	if _, err := client.NetworkingV1().Ingresses("ns").Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "last"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "s", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		ing, err := client.NetworkingV1().Ingresses("ns").Get(ctx, "last", metav1.GetOptions{})
		return err == nil && len(ing.Status.LoadBalancer.Ingress) == 2, nil
	}); err != nil {
		t.Fatalf("the last Ingress's status: %v", err)
	}
	if ing, _ := client.NetworkingV1().Ingresses("ns").Get(ctx, "theirs", metav1.GetOptions{}); len(ing.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("another class's Ingress got a status: %+v", ing.Status)
	}
}
