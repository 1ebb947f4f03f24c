package apiserver

import (
	"context"
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
	p, err := newPatcher(w, r, h.res.GroupVersionKind(), h.objs.newObject, opts.validation)
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
		obj, err := decodeBody(w, r, h.res.GroupVersionKind(), h.objs.newObject(), opts.validation)
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
		p, err := newPatcher(w, r, h.res.GroupVersionKind(), h.objs.newObject, opts.validation)
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
		var kind func(ctx context.Context, obj, old runtime.Object) field.ErrorList
		if ss, ok := h.res.Strategy.(registry.StatusStrategy); ok {
			kind = ss.ValidateStatusUpdate
		}
		if err := h.validateUpdate(ctx, next, cur, kind); err != nil {
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
			if s, err = toScale(obj); err == nil {
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
		curScale, err := toScale(cur)
		if err != nil {
			return nil, err
		}
		s, err := desired(curScale)
		if err != nil {
			return nil, err
		}
		if s.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), info.name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), s.Spec.Replicas, "must be greater than or equal to 0")})
		}
		next := cur.DeepCopyObject()
		replicas, _, _, _ := scaleFields(next)
		n := s.Spec.Replicas
		replicas.Set(reflect.ValueOf(&n))
		nacc, _ := meta.Accessor(next)
		nacc.SetResourceVersion(s.ResourceVersion)
		if h.trackGeneration && specChanged(next, cur) {
			nacc.SetGeneration(nacc.GetGeneration() + 1)
		}
		if err := h.validateUpdate(ctx, next, cur, h.res.Strategy.ValidateUpdate); err != nil {
			return nil, err
		}
		return h.trackManagedFields(cur, next, opts, "")
	})
	if err != nil {
		writeError(w, err)
		return
	}
	s, err := toScale(out)
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, s)
}

// serveBinding assigns a pod to a node (POST pods/{name}/binding).
func (h *resourceHandler) serveBinding(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	in, err := decodeBody(w, r, corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{}, opts.validation)
	if err != nil {
		writeError(w, err)
		return
	}
	b := in.(*corev1.Binding)
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
		return h.trackManagedFields(cur, pod, opts, "")
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

// serveEviction deletes a pod unless a PodDisruptionBudget forbids it.
func (h *resourceHandler) serveEviction(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, opts writeOptions) {
	in, err := decodeBody(w, r, policyv1.SchemeGroupVersion.WithKind("Eviction"), &policyv1.Eviction{}, opts.validation)
	if err != nil {
		writeError(w, err)
		return
	}
	ev := in.(*policyv1.Eviction)
	if ev.Name != "" && ev.Name != info.name {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object: %s != %s", info.name, ev.Name)))
		return
	}
	obj, err := h.objs.get(ctx, info.namespace, info.name)
	if err != nil {
		writeError(w, err)
		return
	}
	pod := obj.(*corev1.Pod)
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if pod.DeletionTimestamp == nil && !terminal {
		if err := h.srv.takeDisruption(ctx, pod); err != nil {
			writeError(w, err)
			return
		}
	}
	delOpts := ev.DeleteOptions
	if delOpts == nil {
		delOpts = &metav1.DeleteOptions{}
	}
	if opts.dryRun {
		delOpts.DryRun = []string{metav1.DryRunAll}
	}
	if _, _, err := h.delete(ctx, info.namespace, info.name, delOpts); err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated})
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
		return ns, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, out)
}

// takeDisruption checks the pod's PodDisruptionBudgets and, when eviction
// is allowed, records it in their status; 429 when a budget forbids it.
func (s *Server) takeDisruption(ctx context.Context, pod *corev1.Pod) error {
	pdbs := s.handler("policy", "v1", "poddisruptionbudgets")
	if pdbs == nil {
		return nil
	}
	list, err := pdbs.list(ctx, pod.Namespace, metav1.ListOptions{})
	if err != nil {
		return err
	}
	items, _ := meta.ExtractList(list)
	var matching []*policyv1.PodDisruptionBudget
	for _, item := range items {
		pdb := item.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		matching = append(matching, pdb)
	}
	if len(matching) > 1 {
		return apierrors.NewInternalError(fmt.Errorf("this pod has more than one PodDisruptionBudget, which the eviction subresource does not support"))
	}
	if len(matching) == 0 {
		return nil
	}
	pdb := matching[0]
	_, err = pdbs.writeUpdate(ctx, pdb.Namespace, pdb.Name, false, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.DeepCopyObject().(*policyv1.PodDisruptionBudget)
		if p.Status.ObservedGeneration < p.Generation || p.Status.DisruptionsAllowed <= 0 {
			err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
			err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
				Type:    policyv1.DisruptionBudgetCause,
				Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", p.Name, p.Status.DesiredHealthy, p.Status.CurrentHealthy),
			})
			return nil, err
		}
		p.Status.DisruptionsAllowed--
		if p.Status.DisruptedPods == nil {
			p.Status.DisruptedPods = map[string]metav1.Time{}
		}
		p.Status.DisruptedPods[pod.Name] = now()
		p.ResourceVersion = ""
		return p, nil
	})
	return err
}
