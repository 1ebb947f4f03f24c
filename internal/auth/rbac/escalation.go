package rbac

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-helpers/auth/rbac/validation"

	"github.com/havre/havre/internal/auth"
)

// Escalation refuses the RBAC writes kube-apiserver refuses: a Role or
// ClusterRole with rules its author does not hold, unless the author may
// "escalate" it; a binding to a role whose rules its author does not hold,
// unless the author may "bind" it; an aggregationRule unless the author
// holds everything. Members of system:masters may write anything.
type Escalation struct {
	// Authorizer is the server's whole authorizer, asked for the escalate
	// and bind verbs.
	Authorizer auth.Authorizer
	Index      *Index
	// Roles, when set, reads the role a binding refers to from the store,
	// as upstream's binding storage does. The Index follows an informer: a
	// role created a moment ago (kubectl apply of a Role and its
	// RoleBinding in one file) may not be in it yet. Nil: the Index.
	Roles RoleReader
}

// RoleReader reads the rules of the role ref names (a Role in namespace,
// or a ClusterRole) from the store; a NotFound error when it is absent.
type RoleReader interface {
	RoleRules(ctx context.Context, ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error)
}

// fullAuthority is cluster-admin's rules: what an aggregationRule needs.
var fullAuthority = []rbacv1.PolicyRule{
	{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
	{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
}

// Check is called before obj, one of the four RBAC kinds, is created (old
// nil) or replaces old; it returns the 403 upstream gives, or nil.
func (e *Escalation) Check(ctx context.Context, obj, old runtime.Object) error {
	u, ok := auth.UserFrom(ctx)
	if !ok {
		return errors.New("no user on context")
	}
	if u.InGroup(auth.GroupMasters) {
		return nil
	}
	if old != nil && onlyMutatingGCFields(obj, old) {
		return nil
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	namespace, name := acc.GetNamespace(), acc.GetName()
	requestName := name
	if old == nil {
		requestName = "" // a create names no object in its request
	}
	switch o := obj.(type) {
	case *rbacv1.Role:
		if e.allowed(ctx, u, "escalate", "roles", namespace, requestName) {
			return nil
		}
		return forbidden("roles", name, e.confirmNoEscalation(u, namespace, o.Rules))
	case *rbacv1.ClusterRole:
		if e.allowed(ctx, u, "escalate", "clusterroles", "", requestName) {
			return nil
		}
		if err := e.confirmNoEscalation(u, "", o.Rules); err != nil {
			return forbidden("clusterroles", name, err)
		}
		oldAggregates := false
		if old, ok := old.(*rbacv1.ClusterRole); ok {
			oldAggregates = hasAggregationRule(old)
		}
		if hasAggregationRule(o) || oldAggregates {
			if e.confirmNoEscalation(u, "", fullAuthority) != nil {
				return forbidden("clusterroles", name, errors.New("must have cluster-admin privileges to use the aggregationRule"))
			}
		}
		return nil
	case *rbacv1.RoleBinding:
		return e.checkBinding(ctx, u, "rolebindings", namespace, name, o.RoleRef)
	case *rbacv1.ClusterRoleBinding:
		return e.checkBinding(ctx, u, "clusterrolebindings", "", name, o.RoleRef)
	}
	return nil
}

func hasAggregationRule(r *rbacv1.ClusterRole) bool {
	return r.AggregationRule != nil && len(r.AggregationRule.ClusterRoleSelectors) > 0
}

func (e *Escalation) checkBinding(ctx context.Context, u *auth.User, resource, namespace, name string, ref rbacv1.RoleRef) error {
	var roleResource string
	switch ref.Kind {
	case "Role":
		roleResource = "roles"
	case "ClusterRole":
		roleResource = "clusterroles"
	default:
		return nil // validation refuses it
	}
	if e.allowed(ctx, u, "bind", roleResource, namespace, ref.Name) {
		return nil
	}
	var rules []rbacv1.PolicyRule
	var err error
	if e.Roles != nil {
		rules, err = e.Roles.RoleRules(ctx, ref, namespace)
	} else {
		e.Index.mu.RLock()
		rules, err = e.Index.roleRules(ref, namespace)
		e.Index.mu.RUnlock()
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return apierrors.NewNotFound(schema.GroupResource{Group: rbacv1.GroupName, Resource: roleResource}, ref.Name)
		}
		return err
	}
	return forbidden(resource, name, e.confirmNoEscalation(u, namespace, rules))
}

// allowed asks the authorizer about verb (escalate or bind) on a role.
func (e *Escalation) allowed(ctx context.Context, u *auth.User, verb, resource, namespace, name string) bool {
	d, _, err := e.Authorizer.Authorize(ctx, auth.Attributes{
		User: u, Verb: verb, APIGroup: rbacv1.GroupName, APIVersion: "*", Resource: resource,
		Namespace: namespace, Name: name, ResourceRequest: true,
	})
	return err == nil && d == auth.DecisionAllow
}

func forbidden(resource, name string, err error) error {
	if err == nil {
		return nil
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: rbacv1.GroupName, Resource: resource}, name, err)
}

// confirmNoEscalation is upstream's ConfirmNoEscalation: the user's rules in
// namespace must cover rules; the error lists the missing ones, compacted.
func (e *Escalation) confirmNoEscalation(u *auth.User, namespace string, rules []rbacv1.PolicyRule) error {
	owned, resolveErr := e.Index.RulesFor(u, namespace)
	covered, missing := validation.Covers(owned, rules)
	if covered {
		return nil
	}
	descriptions := map[string]bool{}
	for _, r := range compactRules(missing) {
		descriptions[CompactString(r)] = true
	}
	lines := make([]string, 0, len(descriptions))
	for d := range descriptions {
		lines = append(lines, d)
	}
	sort.Strings(lines)
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s", u.Name, u.Groups, strings.Join(lines, "\n"))
	if resolveErr != nil {
		msg += fmt.Sprintf("; resolution errors: %v", []error{resolveErr})
	}
	return errors.New(msg)
}

type simpleResource struct {
	group, resource, name string
	hasName               bool
}

// compactRules merges rules on one group, one resource and at most one
// name, that differ only in their verbs, as upstream's CompactRules.
func compactRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	compacted := make([]rbacv1.PolicyRule, 0, len(rules))
	simple := map[simpleResource]*rbacv1.PolicyRule{}
	var order []simpleResource
	for _, r := range rules {
		if len(r.ResourceNames) > 1 || len(r.NonResourceURLs) > 0 || len(r.APIGroups) != 1 || len(r.Resources) != 1 {
			compacted = append(compacted, r)
			continue
		}
		key := simpleResource{group: r.APIGroups[0], resource: r.Resources[0]}
		if len(r.ResourceNames) == 1 {
			key.name, key.hasName = r.ResourceNames[0], true
		}
		if existing, ok := simple[key]; ok {
			existing.Verbs = append(existing.Verbs, r.Verbs...)
			continue
		}
		simple[key] = r.DeepCopy()
		order = append(order, key)
	}
	for _, k := range order {
		compacted = append(compacted, *simple[k])
	}
	return compacted
}

// CompactString describes a rule as upstream's, for example
// {APIGroups:[""], Resources:["pods"], Verbs:["get"]}.
func CompactString(r rbacv1.PolicyRule) string {
	var parts []string
	if len(r.APIGroups) > 0 {
		parts = append(parts, fmt.Sprintf("APIGroups:%q", r.APIGroups))
	}
	if len(r.Resources) > 0 {
		parts = append(parts, fmt.Sprintf("Resources:%q", r.Resources))
	}
	if len(r.NonResourceURLs) > 0 {
		parts = append(parts, fmt.Sprintf("NonResourceURLs:%q", r.NonResourceURLs))
	}
	if len(r.ResourceNames) > 0 {
		parts = append(parts, fmt.Sprintf("ResourceNames:%q", r.ResourceNames))
	}
	if len(r.Verbs) > 0 {
		parts = append(parts, fmt.Sprintf("Verbs:%q", r.Verbs))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// onlyMutatingGCFields reports whether an update changes nothing but what
// the garbage collector changes (owner references, finalizers, deletion),
// which upstream lets through unchecked.
func onlyMutatingGCFields(obj, old runtime.Object) bool {
	c := obj.DeepCopyObject()
	cm, err := meta.Accessor(c)
	if err != nil {
		return false
	}
	om, err := meta.Accessor(old)
	if err != nil {
		return false
	}
	cm.SetOwnerReferences(om.GetOwnerReferences())
	cm.SetFinalizers(om.GetFinalizers())
	cm.SetSelfLink(om.GetSelfLink())
	cm.SetDeletionTimestamp(om.GetDeletionTimestamp())
	cm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	cm.SetResourceVersion(om.GetResourceVersion())
	cm.SetManagedFields(om.GetManagedFields())
	return apiequality.Semantic.DeepEqual(c, old)
}
