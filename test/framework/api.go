package framework

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// RequestTimeout bounds one API request of a test.
const RequestTimeout = 30 * time.Second

// RequestContext returns a context for one API request of a test: it ends
// after RequestTimeout, or with the test.
func RequestContext(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), RequestTimeout)
	t.Cleanup(cancel)
	return c
}

// NewNamespace creates a namespace for one test, named prefix-<generated>,
// and returns its name.
func NewNamespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(RequestContext(t), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}
