package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"

	"github.com/havre/havre/internal/registry"
)

func (h *resourceHandler) servePatch(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	defer cancel()
	opts, err := parseWriteOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := h.newPatcher(w, r, opts.validation)
	if err != nil {
		writeError(w, err)
		return
	}
	if p.typ == types.ApplyYAMLPatchType {
		h.serveApply(ctx, w, r, info, p, opts)
		return
	}
	out, err := h.update(ctx, info.namespace, info.name, p.apply, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, out)
}

func (h *resourceHandler) serveSubresource(w http.ResponseWriter, r *http.Request, info requestInfo) {
	sub := h.res.Subresource(info.subresource)
	if sub == nil || info.name == "" {
		writeError(w, errNotFoundPath())
		return
	}
	verb := info.verb
	if !slices.Contains(sub.Verbs, verb) {
		writeError(w, apierrors.NewMethodNotSupported(h.gr(), verb))
		return
	}
	if h.res.Resource == "pods" && streamed(info.subresource) {
		h.serveNodeStream(w, r, info)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	opts, err := parseWriteOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	switch info.subresource {
	case registry.Status:
		h.serveStatus(ctx, w, r, info, opts)
	case registry.Scale:
		h.serveScale(ctx, w, r, info, opts)
	case registry.Binding:
		h.serveBinding(ctx, w, r, info, opts)
	case registry.Eviction:
		h.serveEviction(ctx, w, r, info, opts)
	case registry.Finalize:
		h.serveFinalize(ctx, w, r, info, opts)
	default:
		writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf(
			"%s/%s is served by the node agent, which this server does not run", h.res.Resource, info.subresource)))
	}
}

// serveStatus serves the status subresource: writes keep only the status.
func (h *resourceHandler) serveStatus(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	var desired func(cur runtime.Object) (runtime.Object, error)
	switch info.verb {
	case "get":
		obj, err := h.objs.get(ctx, info.namespace, info.name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeObject(w, r, http.StatusOK, obj)
		return
	case "update":
		obj, err := h.decodeBody(w, r, opts.validation)
		if err != nil {
			writeError(w, err)
			return
		}
		if nameOf(obj) != info.name {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", nameOf(obj), info.name)))
			return
		}
		desired = func(runtime.Object) (runtime.Object, error) { return obj.DeepCopyObject(), nil }
	case "patch":
		p, err := h.newPatcher(w, r, opts.validation)
		if err != nil {
			writeError(w, err)
			return
		}
		if p.typ == types.ApplyYAMLPatchType {
			writeError(w, errApplyUnsupported(h.res.Resource+"/"+info.subresource))
			return
		}
		desired = p.apply
	}
	out, err := h.writeUpdate(ctx, info.namespace, info.name, opts.dryRun, func(cur runtime.Object) (runtime.Object, error) {
		obj, err := desired(cur)
		if err != nil {
			return nil, err
		}
		// Only the status changes; metadata that clients may set on status
		// writes (labels, annotations) is kept from the request only for
		// resourceVersion, which drives optimistic concurrency.
		next := cur.DeepCopyObject()
		copyStatus(next, obj)
		nacc, _ := meta.Accessor(next)
		acc, _ := meta.Accessor(obj)
		nacc.SetResourceVersion(acc.GetResourceVersion())
		nacc.SetUID(acc.GetUID())
		if h.hooks.statusWritesMetadata {
			nacc.SetLabels(acc.GetLabels())
			nacc.SetAnnotations(acc.GetAnnotations())
			nacc.SetFinalizers(acc.GetFinalizers())
		}
		attrs := admissionAttrs{op: admission.Update, obj: next, old: cur, subresource: info.subresource,
			namespace: info.namespace, name: info.name, options: opts.updateOptions(), dryRun: opts.dryRun}
		if err := h.admitMutate(ctx, attrs); err != nil {
			return nil, err
		}
		var kind func(ctx context.Context, obj, old runtime.Object) field.ErrorList
		if ss, ok := h.res.Strategy.(registry.StatusStrategy); ok {
			kind = ss.ValidateStatusUpdate
		}
		if err := h.validateUpdate(ctx, next, cur, kind); err != nil {
			return nil, err
		}
		if err := h.admitValidate(ctx, attrs); err != nil {
			return nil, err
		}
		return h.trackManagedFields(cur, next, opts, registry.Status)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, out)
}

// scaleFields reaches spec.replicas, spec.selector and status.replicas of
// the scalable workloads.
func scaleFields(obj runtime.Object) (replicas reflect.Value, selector *metav1.LabelSelector, statusReplicas int32, ok bool) {
	spec, ok1 := structField(obj, "Spec")
	status, ok2 := structField(obj, "Status")
	if !ok1 || !ok2 {
		return reflect.Value{}, nil, 0, false
	}
	replicas = spec.FieldByName("Replicas")
	sel, _ := spec.FieldByName("Selector").Interface().(*metav1.LabelSelector)
	sr := status.FieldByName("Replicas")
	if !replicas.IsValid() || !sr.IsValid() {
		return reflect.Value{}, nil, 0, false
	}
	return replicas, sel, int32(sr.Int()), true
}

func toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	replicas, sel, statusReplicas, ok := scaleFields(obj)
	if !ok {
		return nil, fmt.Errorf("%T has no scale", obj)
	}
	acc, _ := meta.Accessor(obj)
	s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{
		Name: acc.GetName(), Namespace: acc.GetNamespace(), UID: acc.GetUID(),
		ResourceVersion: acc.GetResourceVersion(), CreationTimestamp: acc.GetCreationTimestamp(),
	}}
	if !replicas.IsNil() {
		s.Spec.Replicas = int32(replicas.Elem().Int())
	}
	s.Status.Replicas = statusReplicas
	if sel != nil {
		if ls, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			s.Status.Selector = ls.String()
		}
	}
	return s, nil
}

func (h *resourceHandler) serveScale(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	scaleGVK := autoscalingv1.SchemeGroupVersion.WithKind("Scale")
	var desired func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
	switch info.verb {
	case "get":
		obj, err := h.objs.get(ctx, info.namespace, info.name)
		if err == nil {
			var s *autoscalingv1.Scale
			if s, err = h.toScale(obj); err == nil {
				writeObject(w, r, http.StatusOK, s)
				return
			}
		}
		writeError(w, err)
		return
	case "update":
		in, err := decodeBody(w, r, scaleGVK, &autoscalingv1.Scale{}, opts.validation)
		if err != nil {
			writeError(w, err)
			return
		}
		desired = func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return in.(*autoscalingv1.Scale), nil }
	case "patch":
		p, err := newPatcher(w, r, scaleGVK, func() runtime.Object { return &autoscalingv1.Scale{} }, opts.validation)
		if err != nil {
			writeError(w, err)
			return
		}
		if p.typ == types.ApplyYAMLPatchType {
			writeError(w, errApplyUnsupported(h.res.Resource+"/"+info.subresource))
			return
		}
		desired = func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			out, err := p.apply(cur)
			if err != nil {
				return nil, err
			}
			return out.(*autoscalingv1.Scale), nil
		}
	}
	out, err := h.writeUpdate(ctx, info.namespace, info.name, opts.dryRun, func(cur runtime.Object) (runtime.Object, error) {
		curScale, err := h.toScale(cur)
		if err != nil {
			return nil, err
		}
		s, err := desired(curScale)
		if err != nil {
			return nil, err
		}
		attrs := admissionAttrs{op: admission.Update, obj: s, old: curScale, subresource: registry.Scale, kind: scaleGVK,
			namespace: info.namespace, name: info.name, options: opts.updateOptions(), dryRun: opts.dryRun}
		if err := h.admitMutate(ctx, attrs); err != nil {
			return nil, err
		}
		if s.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), info.name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), s.Spec.Replicas, "must be greater than or equal to 0")})
		}
		next := cur.DeepCopyObject()
		if err := h.setReplicas(next, s.Spec.Replicas); err != nil {
			return nil, err
		}
		nacc, _ := meta.Accessor(next)
		nacc.SetResourceVersion(s.ResourceVersion)
		if h.trackGeneration && specChanged(next, cur) {
			nacc.SetGeneration(nacc.GetGeneration() + 1)
		}
		if err := h.validateUpdate(ctx, next, cur, h.res.Strategy.ValidateUpdate); err != nil {
			return nil, err
		}
		if err := h.admitValidate(ctx, attrs); err != nil {
			return nil, err
		}
		return h.trackManagedFields(cur, next, opts, "")
	})
	if err != nil {
		writeError(w, err)
		return
	}
	s, err := h.toScale(out)
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, s)
}

// toScale returns obj's scale subresource.
func (h *resourceHandler) toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	if h.custom != nil {
		return h.custom.scaleOf(obj)
	}
	return toScale(obj)
}

// setReplicas sets obj's desired replicas.
func (h *resourceHandler) setReplicas(obj runtime.Object, n int32) error {
	if h.custom != nil {
		return h.custom.setReplicas(obj, n)
	}
	replicas, _, _, ok := scaleFields(obj)
	if !ok {
		return fmt.Errorf("%T has no scale", obj)
	}
	replicas.Set(reflect.ValueOf(&n))
	return nil
}

// serveBinding assigns a pod to a node (POST pods/{name}/binding).
func (h *resourceHandler) serveBinding(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	in, err := decodeBody(w, r, corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{}, opts.validation)
	if err != nil {
		writeError(w, err)
		return
	}
	b := in.(*corev1.Binding)
	if b.Namespace == "" {
		b.Namespace = info.namespace
	}
	attrs := admissionAttrs{op: admission.Create, obj: b, subresource: registry.Binding,
		kind: corev1.SchemeGroupVersion.WithKind("Binding"), namespace: info.namespace, name: info.name,
		options: opts.createOptions(), dryRun: opts.dryRun}
	if err := h.admitMutate(ctx, attrs); err != nil {
		writeError(w, err)
		return
	}
	if b.Target.Name == "" {
		writeError(w, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), info.name,
			field.ErrorList{field.Required(field.NewPath("target", "name"), "")}))
		return
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		writeError(w, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), info.name,
			field.ErrorList{field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"})}))
		return
	}
	if err := h.admitValidate(ctx, attrs); err != nil {
		writeError(w, err)
		return
	}
	_, err = h.writeUpdate(ctx, info.namespace, info.name, opts.dryRun, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.DeepCopyObject().(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(h.gr(), info.name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(h.gr(), info.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(h.gr(), info.name, fmt.Errorf("pod %v is already assigned to node %q", pod.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now()})
		// A nomination (from preemption, or a hint of an autoscaler) is
		// spent once the pod is bound (ClearingNominatedNodeNameAfterBinding,
		// on by default since 1.35).
		pod.Status.NominatedNodeName = ""
		// As kube-apiserver's BindingREST, which writes the pod to storage
		// directly: a binding leaves the pod's managedFields as they are.
		return pod, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			if pod.Status.Conditions[i].Status == c.Status {
				return
			}
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}

// serveEviction deletes a pod unless a PodDisruptionBudget forbids it, as
// kube-apiserver's eviction subresource does: pods that are pending,
// finished or already being deleted are deleted at once; others take one
// disruption from their budget (429 when it has none), or, when unready,
// are deleted if the budget allows unhealthy pods to go. The pod gets the
// DisruptionTarget condition before it is deleted.
func (h *resourceHandler) serveEviction(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	in, err := decodeBody(w, r, policyv1.SchemeGroupVersion.WithKind("Eviction"), &policyv1.Eviction{}, opts.validation)
	if err != nil {
		writeError(w, err)
		return
	}
	ev := in.(*policyv1.Eviction)
	if ev.Name != info.name {
		writeError(w, apierrors.NewBadRequest("name in URL does not match name in Eviction object"))
		return
	}
	if ev.Namespace == "" {
		ev.Namespace = info.namespace
	}
	attrs := admissionAttrs{op: admission.Create, obj: ev, subresource: registry.Eviction,
		kind: policyv1.SchemeGroupVersion.WithKind("Eviction"), namespace: info.namespace, name: info.name,
		options: opts.createOptions(), dryRun: opts.dryRun}
	if err := h.admitMutate(ctx, attrs); err != nil {
		writeError(w, err)
		return
	}
	if err := h.admitValidate(ctx, attrs); err != nil {
		writeError(w, err)
		return
	}
	// The pod's delete is the eviction's own: it is not admitted again.
	ctx = withoutAdmission(ctx)
	delOpts := &metav1.DeleteOptions{}
	if ev.DeleteOptions != nil {
		delOpts = ev.DeleteOptions.DeepCopy()
	}
	if opts.dryRun && len(delOpts.DryRun) == 0 {
		delOpts.DryRun = []string{metav1.DryRunAll}
	}
	dryRun := len(delOpts.DryRun) > 0
	userRV := delOpts.Preconditions != nil && delOpts.Preconditions.ResourceVersion != nil
	// withRV guards a deletion with the resourceVersion the pod was checked
	// at, so that it cannot become ready (and covered) in between.
	withRV := func(rv string) *metav1.DeleteOptions {
		d := delOpts.DeepCopy()
		if d.Preconditions == nil {
			d.Preconditions = &metav1.Preconditions{}
		}
		d.Preconditions.ResourceVersion = &rv
		return d
	}
	// evict marks the pod as a disruption target, then deletes it.
	evict := func(d *metav1.DeleteOptions) error {
		if !dryRun {
			out, err := h.writeUpdate(ctx, info.namespace, info.name, false, func(cur runtime.Object) (runtime.Object, error) {
				pod := cur.DeepCopyObject().(*corev1.Pod)
				if p := d.Preconditions; p != nil {
					if p.UID != nil && *p.UID != "" && *p.UID != pod.UID {
						return nil, apierrors.NewConflict(h.gr(), pod.Name, fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *p.UID, pod.UID))
					}
					if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != pod.ResourceVersion {
						return nil, apierrors.NewConflict(h.gr(), pod.Name, fmt.Errorf("the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", *p.ResourceVersion, pod.ResourceVersion))
					}
				}
				setPodCondition(pod, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
					Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: now()})
				return pod, nil
			})
			if err != nil {
				return err
			}
			if d.Preconditions != nil && d.Preconditions.ResourceVersion != nil {
				// The condition moved the pod on: the precondition follows.
				d = d.DeepCopy()
				rv := out.(*corev1.Pod).ResourceVersion
				d.Preconditions.ResourceVersion = &rv
			}
		}
		_, _, err := h.delete(ctx, info.namespace, info.name, d)
		return err
	}
	success := func() {
		writeObject(w, r, http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated})
	}

	var pod *corev1.Pod
	for attempt := 0; ; attempt++ {
		obj, err := h.objs.get(ctx, info.namespace, info.name)
		if err != nil {
			writeError(w, err)
			return
		}
		pod = obj.(*corev1.Pod)
		terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
		if !terminal && pod.Status.Phase != corev1.PodPending && pod.DeletionTimestamp == nil {
			break // running: its budget decides
		}
		d := delOpts
		if !terminal && pod.DeletionTimestamp == nil && !userRV {
			d = withRV(pod.ResourceVersion)
		}
		err = evict(d)
		if apierrors.IsConflict(err) && !userRV && attempt < 20 {
			continue
		}
		if err != nil {
			writeError(w, err)
			return
		}
		success()
		return
	}

	guard, pdbName, err := h.srv.takeDisruption(ctx, pod, dryRun)
	if err != nil {
		writeError(w, err)
		return
	}
	d := delOpts
	if guard {
		d = withRV(pod.ResourceVersion)
	}
	if err := evict(d); err != nil {
		if apierrors.IsConflict(err) && guard && !userRV {
			// The unready pod changed since it was checked: the client
			// retries, as with a budget still being processed.
			writeError(w, errBudgetProcessing(pdbName))
			return
		}
		writeError(w, err)
		return
	}
	success()
}

// serveFinalize updates a namespace's spec.finalizers (PUT namespaces/x/finalize).
func (h *resourceHandler) serveFinalize(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	in, err := decodeBody(w, r, corev1.SchemeGroupVersion.WithKind("Namespace"), &corev1.Namespace{}, opts.validation)
	if err != nil {
		writeError(w, err)
		return
	}
	want := in.(*corev1.Namespace)
	out, err := h.writeUpdate(ctx, "", info.name, opts.dryRun, func(cur runtime.Object) (runtime.Object, error) {
		ns := cur.DeepCopyObject().(*corev1.Namespace)
		ns.Spec.Finalizers = want.Spec.Finalizers
		ns.ResourceVersion = want.ResourceVersion
		attrs := admissionAttrs{op: admission.Update, obj: ns, old: cur, subresource: registry.Finalize,
			name: info.name, options: opts.updateOptions(), dryRun: opts.dryRun}
		if err := h.admitMutate(ctx, attrs); err != nil {
			return nil, err
		}
		if err := h.admitValidate(ctx, attrs); err != nil {
			return nil, err
		}
		return ns, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, out)
}

// takeDisruption checks the pod's PodDisruptionBudget and, when it allows
// an eviction, records it in its status (disruptionsAllowed decremented,
// the pod in disruptedPods); 429 when it forbids it, 500 when several
// budgets cover the pod. guard reports an unready pod that may go without
// taking a disruption, provided it is still the pod that was checked.
func (s *Server) takeDisruption(ctx context.Context, pod *corev1.Pod, dryRun bool) (guard bool, pdbName string, err error) {
	pdbs := s.handler("policy", "v1", "poddisruptionbudgets")
	if pdbs == nil {
		return false, "", nil
	}
	list, err := pdbs.list(ctx, pod.Namespace, metav1.ListOptions{})
	if err != nil {
		return false, "", err
	}
	items, _ := meta.ExtractList(list)
	var matching []*policyv1.PodDisruptionBudget
	for _, item := range items {
		pdb := item.(*policyv1.PodDisruptionBudget)
		// A nil selector matches nothing, an empty one every pod (policy/v1).
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		matching = append(matching, pdb)
	}
	if len(matching) > 1 {
		return false, "", &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
			Code:    http.StatusInternalServerError,
		}}
	}
	if len(matching) == 0 {
		return false, "", nil
	}
	pdb := matching[0]
	if !podReady(pod) {
		// An unready pod does not count as healthy: it may go without a
		// disruption when the budget says unhealthy pods always may, or
		// (IfHealthyBudget, the default) when the application is healthy.
		if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
			return true, pdb.Name, nil
		}
		if pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0 {
			return true, pdb.Name, nil
		}
	}
	_, err = pdbs.writeUpdate(ctx, pdb.Namespace, pdb.Name, dryRun, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.DeepCopyObject().(*policyv1.PodDisruptionBudget)
		switch {
		case p.Status.ObservedGeneration < p.Generation:
			return nil, errBudgetProcessing(p.Name)
		case p.Status.DisruptionsAllowed < 0:
			return nil, apierrors.NewForbidden(policyv1.Resource("poddisruptionbudget"), p.Name, errors.New("pdb disruptions allowed is negative"))
		case len(p.Status.DisruptedPods) > maxDisruptedPods:
			return nil, apierrors.NewForbidden(policyv1.Resource("poddisruptionbudget"), p.Name, errors.New("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
		case p.Status.DisruptionsAllowed == 0:
			err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
			err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
				Type:    policyv1.DisruptionBudgetCause,
				Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", p.Name, p.Status.DesiredHealthy, p.Status.CurrentHealthy),
			})
			return nil, err
		}
		p.Status.DisruptionsAllowed--
		if p.Status.DisruptionsAllowed == 0 {
			pdbhelper.UpdateDisruptionAllowedCondition(p)
		}
		if p.Status.DisruptedPods == nil {
			p.Status.DisruptedPods = map[string]metav1.Time{}
		}
		p.Status.DisruptedPods[pod.Name] = now()
		p.ResourceVersion = ""
		return p, nil
	})
	return false, pdb.Name, err
}

// maxDisruptedPods bounds status.disruptedPods: past it, evictions wait for
// the disruption controller to catch up, as kube-apiserver's do.
const maxDisruptedPods = 2000

// errBudgetProcessing is the 429 of a budget whose status is not current.
func errBudgetProcessing(name string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    policyv1.DisruptionBudgetCause,
		Message: fmt.Sprintf("The disruption budget %s is still being processed by the server.", name),
	})
	return err
}

// podReady reports whether the pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
