package apiserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rbacreg "github.com/havre/havre/internal/registry/rbac"
)

// generationTracked are the resources whose metadata.generation counts
// spec changes, as their upstream strategies do.
var generationTracked = map[schema.GroupResource]bool{
	{Resource: "pods"}:                                                     true,
	{Group: "apps", Resource: "deployments"}:                               true,
	{Group: "apps", Resource: "replicasets"}:                               true,
	{Group: "apps", Resource: "statefulsets"}:                              true,
	{Group: "apps", Resource: "daemonsets"}:                                true,
	{Group: "batch", Resource: "jobs"}:                                     true,
	{Group: "batch", Resource: "cronjobs"}:                                 true,
	{Group: "autoscaling", Resource: "horizontalpodautoscalers"}:           true,
	{Group: "policy", Resource: "poddisruptionbudgets"}:                    true,
	{Group: "networking.k8s.io", Resource: "ingresses"}:                    true,
	{Group: "networking.k8s.io", Resource: "networkpolicies"}:              true,
	{Group: "networking.k8s.io", Resource: "ingressclasses"}:               true,
	{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}: true,

	// Admission policies (their status.observedGeneration).
	{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies"}:       true,
	{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicybindings"}: true,
	{Group: "admissionregistration.k8s.io", Resource: "mutatingadmissionpolicies"}:         true,
	{Group: "admissionregistration.k8s.io", Resource: "mutatingadmissionpolicybindings"}:   true,
}

// createOnUpdate are the resources whose PUT creates a missing object.
var createOnUpdate = map[schema.GroupResource]bool{
	{Resource: "endpoints"}:                            true,
	{Resource: "events"}:                               true,
	{Group: "events.k8s.io", Resource: "events"}:       true,
	{Group: "coordination.k8s.io", Resource: "leases"}: true,
}

// protectedNamespaces may not be deleted.
var protectedNamespaces = map[string]bool{
	metav1.NamespaceDefault: true, metav1.NamespaceSystem: true, metav1.NamespacePublic: true,
}

// customise wires the server behaviour particular to some kinds.
func (s *Server) customise(h *resourceHandler) {
	gr := h.res.GroupResource()
	h.trackGeneration = generationTracked[gr]
	h.createOnUpdate = createOnUpdate[gr]
	if gr.Group == rbacv1.GroupName {
		h.nameFn = rbacreg.ValidateName
		if esc := s.cfg.RBACEscalation; esc != nil {
			h.hooks.beforeCreate = func(ctx context.Context, obj runtime.Object) error { return esc.Check(ctx, obj, nil) }
			h.hooks.beforeUpdate = esc.Check
		}
	}
	switch gr {
	case schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}:
		// Local APIServices of the legacy group are named "v1.": a path
		// segment, not a DNS subdomain; the strategy checks the rest.
		h.nameFn = func(name string, _ bool) []string { return content.IsPathSegmentName(name) }
	case schema.GroupResource{Resource: "namespaces"}:
		h.nameFn = metavalidation.ValidateNamespaceName
		h.hooks.beforeDelete = func(obj runtime.Object) error {
			ns := obj.(*corev1.Namespace)
			if protectedNamespaces[ns.Name] {
				return apierrors.NewForbidden(gr, ns.Name, errors.New("this namespace may not be deleted"))
			}
			return nil
		}
		h.hooks.blocksDeletion = func(obj runtime.Object) bool {
			return len(obj.(*corev1.Namespace).Spec.Finalizers) > 0
		}
		h.hooks.pendingDelete = func(obj runtime.Object) {
			obj.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating
		}
	case schema.GroupResource{Resource: "services"}:
		h.nameFn = metavalidation.NameIsDNS1035Label
		h.hooks.serialiseCreate = true
		h.hooks.beforeCreate = s.services.allocate
		h.hooks.beforeUpdate = s.services.allocateUpdate
	case claimsResource:
		h.hooks.beforeCreate = s.admitClaimCreate
		h.hooks.beforeUpdate = s.admitClaimUpdate
	case volumesResource:
		h.hooks.beforeCreate = admitVolumeCreate
	case schema.GroupResource{Resource: "pods"}:
		h.hooks.returnDeleted = true
		h.hooks.gracePeriod = podGracePeriod
		h.hooks.beforeCreate = s.admitPod
	case schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}:
		// As upstream: deleting a definition first deletes its instances.
		h.hooks.deleteFinalizers = []string{apiextensionsv1.CustomResourceCleanupFinalizer}
		h.hooks.statusWritesMetadata = true
		// Custom resources are served, or no longer, when the write that
		// establishes (or removes) their definition is acknowledged.
		h.hooks.afterWrite = func(ctx context.Context) {
			if _, err := s.syncCustomResources(ctx); err != nil {
				slog.Warn("serving custom resources", "err", err)
			}
		}
		h.hooks.pendingDelete = func(obj runtime.Object) {
			crd := obj.(*apiextensionsv1.CustomResourceDefinition)
			apiextensionshelpers.SetCRDCondition(crd, apiextensionsv1.CustomResourceDefinitionCondition{
				Type: apiextensionsv1.Terminating, Status: apiextensionsv1.ConditionTrue, Reason: "InstanceDeletionPending",
				Message: "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
			})
		}
	case schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}:
		h.hooks.beforeCreate = func(ctx context.Context, obj runtime.Object) error {
			return s.admitPriorityClass(ctx, h, obj, nil)
		}
		h.hooks.beforeUpdate = func(ctx context.Context, obj, old runtime.Object) error {
			return s.admitPriorityClass(ctx, h, obj, old)
		}
	}
}

// podGracePeriod is the graceful-deletion period of a pod: none for pods
// that never reached a node or have finished, else what the client asked or
// the pod's terminationGracePeriodSeconds.
func podGracePeriod(obj runtime.Object, requested *int64) int64 {
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if requested != nil {
		return *requested
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// namespaceAcceptsContent refuses content in missing or terminating
// namespaces, with kube-apiserver's errors.
func (s *Server) namespaceAcceptsContent(ctx context.Context, namespace string) error {
	nsh := s.handler("", "v1", "namespaces")
	obj, err := nsh.objs.get(ctx, "", namespace)
	if err != nil {
		return err
	}
	if obj.(*corev1.Namespace).DeletionTimestamp != nil {
		err := apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, namespace,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		err.ErrStatus.Message = fmt.Sprintf("unable to create new content in namespace %s because it is being terminated", namespace)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Message: err.ErrStatus.Message, Field: "metadata.namespace"})
		return err
	}
	return nil
}

// waitForRevision waits briefly for the store to reach rev, as a list with
// resourceVersion=N (NotOlderThan) requires.
func (s *Server) waitForRevision(ctx context.Context, rev int64) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		cur, _, err := s.cfg.Store.Revision(ctx)
		if err != nil {
			return err
		}
		if cur >= rev {
			return nil
		}
		if time.Now().After(deadline) {
			err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rev, cur), 1)
			err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compactLoop compacts history older than one interval, as kube-apiserver
// asks etcd to every five minutes.
func (s *Server) compactLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CompactionInterval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, compacted, err := s.cfg.Store.Revision(ctx)
		if err != nil {
			continue
		}
		if last > compacted {
			if err := s.cfg.Store.Compact(ctx, last); err != nil && ctx.Err() == nil {
				logCompaction(last, err)
			}
		}
		last = cur
	}
}

func secondsDuration(s int64) time.Duration { return time.Duration(s) * time.Second }

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
