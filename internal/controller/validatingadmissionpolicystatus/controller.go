// Package validatingadmissionpolicystatus is kube-controller-manager's
// validatingadmissionpolicy-status-controller: it type-checks the
// expressions of every ValidatingAdmissionPolicy against the schemas of
// the kinds it matches (and of its paramKind), with k8s.io/apiserver's
// TypeChecker, and writes the warnings to status.typeChecking with
// status.observedGeneration.
//
// It is a client of the API only, and writes nothing but policies' status.
package validatingadmissionpolicystatus

import (
	"context"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listers "k8s.io/client-go/listers/admissionregistration/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

// Name is the controller's name, as upstream's.
const Name = "validatingadmissionpolicy-status-controller"

// Controller writes the type-checking status of policies.
type Controller struct {
	client  kubernetes.Interface
	lister  listers.ValidatingAdmissionPolicyLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	checker *validating.TypeChecker
}

// New returns a controller on the policy informer of factory. The schemas
// of the matched kinds are read from the server's OpenAPI v3 (custom
// resources included) through client's discovery; mapper resolves the
// matched resources to kinds.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, mapper meta.RESTMapper) (*Controller, error) {
	inf := factory.Admissionregistration().V1().ValidatingAdmissionPolicies()
	c := &Controller{
		client: client,
		lister: inf.Lister(),
		synced: []cache.InformerSynced{inf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ValidatingAdmissionPolicyStatus"}),
		checker: &validating.TypeChecker{
			SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: client.Discovery()},
			RestMapper:     mapper,
		},
	}
	enqueue := func(obj any) {
		if p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy); ok {
			c.queue.Add(p.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run type-checks with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "type-checking a ValidatingAdmissionPolicy failed; retrying", "policy")
}

func (c *Controller) sync(ctx context.Context, name string) error {
	policy, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if policy.Status.TypeChecking != nil && policy.Status.ObservedGeneration == policy.Generation {
		return nil
	}
	warnings := c.checker.Check(policy)
	p := policy.DeepCopy()
	p.Status.ObservedGeneration = policy.Generation
	p.Status.TypeChecking = &admissionregistrationv1.TypeChecking{ExpressionWarnings: warnings}
	_, err = c.client.AdmissionregistrationV1().ValidatingAdmissionPolicies().UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Deleted, or changed: the informer brings the new version.
		return nil
	}
	return err
}
