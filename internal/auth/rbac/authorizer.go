package rbac

import (
	"context"
	"errors"

	rbacv1 "k8s.io/api/rbac/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/havre/havre/internal/auth"
)

// Authorizer allows the requests the RBAC objects of its index grant, and
// has no opinion on any other, as kube-apiserver's RBAC authorizer.
type Authorizer struct {
	Index *Index
}

// Authorize implements auth.Authorizer. When no rule allows the request,
// the reason lists the errors met resolving the user's bindings (roles
// that do not exist), prefixed "RBAC: ", as upstream.
func (z Authorizer) Authorize(_ context.Context, a auth.Attributes) (auth.Decision, string, error) {
	if a.User == nil {
		return auth.DecisionNoOpinion, "", nil
	}
	var (
		allowed bool
		source  ruleSource
		errs    []error
		attrs   = &a
	)
	z.Index.visit(a.User.Name, a.User.Groups, a.Namespace, func(src ruleSource, rule *rbacv1.PolicyRule, err error) bool {
		if rule != nil && RuleAllows(attrs, rule) {
			allowed, source = true, src
			return false
		}
		if err != nil {
			errs = append(errs, err)
		}
		return true
	})
	if allowed {
		return auth.DecisionAllow, "RBAC: allowed by " + source.String(), nil
	}
	if len(errs) > 0 {
		return auth.DecisionNoOpinion, "RBAC: " + utilerrors.NewAggregate(errs).Error(), nil
	}
	return auth.DecisionNoOpinion, "", nil
}

// RulesFor returns every rule granted to the user in namespace (cluster-wide
// rules included), and the errors met resolving its bindings: the rules are
// then incomplete.
func (x *Index) RulesFor(u *auth.User, namespace string) ([]rbacv1.PolicyRule, error) {
	var (
		rules []rbacv1.PolicyRule
		errs  []error
	)
	if u == nil {
		return nil, errors.New("no user")
	}
	x.visit(u.Name, u.Groups, namespace, func(_ ruleSource, rule *rbacv1.PolicyRule, err error) bool {
		if rule != nil {
			rules = append(rules, *rule.DeepCopy())
		}
		if err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return rules, utilerrors.NewAggregate(errs)
}
