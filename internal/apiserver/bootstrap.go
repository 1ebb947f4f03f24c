package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// bootstrap creates the objects every cluster has: the default namespaces,
// the kubernetes and kube-dns Services and the built-in PriorityClasses.
func (s *Server) bootstrap(ctx context.Context) error {
	namespaces := s.handler("", "v1", "namespaces")
	for _, name := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		if err := ensure(ctx, namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: s.services.kubernetesServiceIP(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(s.port())}},
		},
	}
	if err := ensure(ctx, s.handler("", "v1", "services"), svc); err != nil {
		return fmt.Errorf("creating the kubernetes service: %w", err)
	}
	if dns := s.dnsService(); dns != nil {
		if err := ensure(ctx, s.handler("", "v1", "services"), dns); err != nil {
			return fmt.Errorf("creating the kube-dns service: %w", err)
		}
	}
	if err := s.ensureSystemPriorityClasses(ctx); err != nil {
		return err
	}
	return nil
}

// port is the port the API is served on (6443 until the server listens).
func (s *Server) port() int32 {
	if s.listener != nil {
		if a, ok := s.listener.Addr().(*net.TCPAddr); ok {
			return int32(a.Port)
		}
	}
	return 6443
}

// dnsService is kube-system/kube-dns on the tenth address of the service
// range, where upstream's manifests and tools expect cluster DNS. It has no
// selector: every node agent answers it itself (its service proxy sends the
// Service's traffic to the node's own DNS server).
func (s *Server) dnsService() *corev1.Service {
	ip := s.services.dnsServiceIP()
	if ip == "" {
		return nil
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "KubeDNS"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: ip,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
}

// ensure creates obj unless an object of that name exists.
func ensure(ctx context.Context, h *resourceHandler, obj runtime.Object) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if _, err := h.objs.get(ctx, acc.GetNamespace(), acc.GetName()); !apierrors.IsNotFound(err) {
		return err
	}
	_, err = h.create(ctx, obj, writeOptions{manager: "havre"})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func logCompaction(rev int64, err error) {
	slog.Warn("compacting store history", "revision", rev, "err", err)
}
