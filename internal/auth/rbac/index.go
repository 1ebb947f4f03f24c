package rbac

import (
	"strconv"
	"strings"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ServiceAccountUsernamePrefix starts the user name of a service account:
// system:serviceaccount:<namespace>:<name>.
const ServiceAccountUsernamePrefix = "system:serviceaccount:"

// ServiceAccountUsername is the user name of a service account.
func ServiceAccountUsername(namespace, name string) string {
	return ServiceAccountUsernamePrefix + namespace + ":" + name
}

// binding is a RoleBinding or ClusterRoleBinding as the index keeps it.
type binding struct {
	namespace, name string // namespace is empty for a ClusterRoleBinding
	roleRef         rbacv1.RoleRef
	subjects        []rbacv1.Subject
}

// subjects indexes bindings by the user names and group names they bind.
// A service account subject is indexed by its user name (as upstream, it
// matches exactly that user name).
type subjects struct {
	byUser  map[string][]*binding
	byGroup map[string][]*binding
}

func newSubjects() *subjects {
	return &subjects{byUser: map[string][]*binding{}, byGroup: map[string][]*binding{}}
}

// keys calls f with each index key of b, once each.
func (b *binding) keys(f func(group bool, key string)) {
	seen := make(map[[2]string]bool, len(b.subjects))
	for _, s := range b.subjects {
		var group bool
		var key string
		switch s.Kind {
		case rbacv1.UserKind:
			key = s.Name
		case rbacv1.GroupKind:
			group, key = true, s.Name
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = b.namespace
			}
			if ns == "" {
				continue
			}
			key = ServiceAccountUsername(ns, s.Name)
		default:
			continue
		}
		k := [2]string{"u", key}
		if group {
			k[0] = "g"
		}
		if !seen[k] {
			seen[k] = true
			f(group, key)
		}
	}
}

func (s *subjects) add(b *binding) {
	b.keys(func(group bool, key string) {
		m := s.byUser
		if group {
			m = s.byGroup
		}
		m[key] = append(m[key], b)
	})
}

func (s *subjects) remove(b *binding) {
	b.keys(func(group bool, key string) {
		m := s.byUser
		if group {
			m = s.byGroup
		}
		list := m[key]
		for i, x := range list {
			if x == b {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(m, key)
		} else {
			m[key] = list
		}
	})
}

// Index holds the RBAC objects. It is safe for concurrent use.
type Index struct {
	mu           sync.RWMutex
	clusterRoles map[string]*rbacv1.ClusterRole
	roles        map[string]map[string]*rbacv1.Role // namespace, name
	crbs         map[string]*binding                // name
	rbs          map[string]map[string]*binding     // namespace, name
	cluster      *subjects
	namespaced   map[string]*subjects
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		clusterRoles: map[string]*rbacv1.ClusterRole{},
		roles:        map[string]map[string]*rbacv1.Role{},
		crbs:         map[string]*binding{},
		rbs:          map[string]map[string]*binding{},
		cluster:      newSubjects(),
		namespaced:   map[string]*subjects{},
	}
}

// SetClusterRole adds or replaces a ClusterRole; the index keeps it as is.
func (x *Index) SetClusterRole(r *rbacv1.ClusterRole) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.clusterRoles[r.Name] = r
}

// DeleteClusterRole removes a ClusterRole.
func (x *Index) DeleteClusterRole(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.clusterRoles, name)
}

// SetRole adds or replaces a Role; the index keeps it as is.
func (x *Index) SetRole(r *rbacv1.Role) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.roles[r.Namespace]
	if m == nil {
		m = map[string]*rbacv1.Role{}
		x.roles[r.Namespace] = m
	}
	m[r.Name] = r
}

// DeleteRole removes a Role.
func (x *Index) DeleteRole(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.roles[namespace], name)
	if len(x.roles[namespace]) == 0 {
		delete(x.roles, namespace)
	}
}

// SetClusterRoleBinding adds or replaces a ClusterRoleBinding.
func (x *Index) SetClusterRoleBinding(b *rbacv1.ClusterRoleBinding) {
	nb := &binding{name: b.Name, roleRef: b.RoleRef, subjects: b.Subjects}
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.crbs[b.Name]; old != nil {
		x.cluster.remove(old)
	}
	x.crbs[b.Name] = nb
	x.cluster.add(nb)
}

// DeleteClusterRoleBinding removes a ClusterRoleBinding.
func (x *Index) DeleteClusterRoleBinding(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.crbs[name]; old != nil {
		x.cluster.remove(old)
		delete(x.crbs, name)
	}
}

// SetRoleBinding adds or replaces a RoleBinding.
func (x *Index) SetRoleBinding(b *rbacv1.RoleBinding) {
	nb := &binding{namespace: b.Namespace, name: b.Name, roleRef: b.RoleRef, subjects: b.Subjects}
	x.mu.Lock()
	defer x.mu.Unlock()
	m, s := x.rbs[b.Namespace], x.namespaced[b.Namespace]
	if m == nil {
		m, s = map[string]*binding{}, newSubjects()
		x.rbs[b.Namespace], x.namespaced[b.Namespace] = m, s
	}
	if old := m[b.Name]; old != nil {
		s.remove(old)
	}
	m[b.Name] = nb
	s.add(nb)
}

// DeleteRoleBinding removes a RoleBinding.
func (x *Index) DeleteRoleBinding(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.rbs[namespace]
	if old := m[name]; old != nil {
		x.namespaced[namespace].remove(old)
		delete(m, name)
		if len(m) == 0 {
			delete(x.rbs, namespace)
			delete(x.namespaced, namespace)
		}
	}
}

// ClusterRole returns a ClusterRole, which must not be modified.
func (x *Index) ClusterRole(name string) (*rbacv1.ClusterRole, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r, ok := x.clusterRoles[name]
	return r, ok
}

// ClusterRoles returns every ClusterRole; they must not be modified.
func (x *Index) ClusterRoles() []*rbacv1.ClusterRole {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]*rbacv1.ClusterRole, 0, len(x.clusterRoles))
	for _, r := range x.clusterRoles {
		out = append(out, r)
	}
	return out
}

var (
	roleResource        = schema.GroupResource{Group: rbacv1.GroupName, Resource: "role"}
	clusterRoleResource = schema.GroupResource{Group: rbacv1.GroupName, Resource: "clusterrole"}
)

// ruleSource describes the binding that granted a rule, as upstream's
// describers ("ClusterRoleBinding \"x\" of ClusterRole \"y\" to User \"z\"").
type ruleSource struct {
	b       *binding
	subject *rbacv1.Subject
}

func (s ruleSource) String() string {
	b := make([]byte, 0, 128)
	if s.b.namespace == "" {
		b = append(b, "ClusterRoleBinding "...)
		b = strconv.AppendQuote(b, s.b.name)
	} else {
		b = append(b, "RoleBinding "...)
		b = strconv.AppendQuote(b, s.b.name+"/"+s.b.namespace)
	}
	b = append(b, " of "...)
	b = append(b, s.b.roleRef.Kind...)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, s.b.roleRef.Name)
	b = append(b, " to "...)
	b = append(b, s.subject.Kind...)
	b = append(b, ' ')
	if s.subject.Kind == rbacv1.ServiceAccountKind {
		ns := s.subject.Namespace
		if ns == "" {
			ns = s.b.namespace
		}
		b = strconv.AppendQuote(b, s.subject.Name+"/"+ns)
	} else {
		b = strconv.AppendQuote(b, s.subject.Name)
	}
	return string(b)
}

// visitor is called with each rule granted to a user, with its source, or
// with an error resolving a binding's role; it returns false to stop.
type visitor func(src ruleSource, rule *rbacv1.PolicyRule, err error) bool

// visit calls v with every rule bound to user: by ClusterRoleBindings, then
// by the RoleBindings of namespace (when not empty). The read lock is held
// throughout: v must not call back into the index.
func (x *Index) visit(user string, groups []string, namespace string, v visitor) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var seen [8]*binding
	visited := seen[:0]
	if !x.visitSubjects(x.cluster, user, groups, "", &visited, v) {
		return
	}
	if namespace == "" {
		return
	}
	if s := x.namespaced[namespace]; s != nil {
		x.visitSubjects(s, user, groups, namespace, &visited, v)
	}
}

func (x *Index) visitSubjects(s *subjects, user string, groups []string, namespace string, visited *[]*binding, v visitor) bool {
	if !x.visitBindings(s.byUser[user], user, groups, namespace, visited, v) {
		return false
	}
	for _, g := range groups {
		if !x.visitBindings(s.byGroup[g], user, groups, namespace, visited, v) {
			return false
		}
	}
	return true
}

func (x *Index) visitBindings(list []*binding, user string, groups []string, namespace string, visited *[]*binding, v visitor) bool {
outer:
	for _, b := range list {
		for _, seen := range *visited {
			if seen == b {
				continue outer
			}
		}
		*visited = append(*visited, b)
		rules, err := x.roleRules(b.roleRef, namespace)
		if err != nil {
			if !v(ruleSource{}, nil, err) {
				return false
			}
			continue
		}
		src := ruleSource{b: b, subject: b.subjectFor(user, groups, namespace)}
		for i := range rules {
			if !v(src, &rules[i], nil) {
				return false
			}
		}
	}
	return true
}

// subjectFor returns the first subject of b naming the user, as upstream's
// appliesTo.
func (b *binding) subjectFor(user string, groups []string, namespace string) *rbacv1.Subject {
	for i := range b.subjects {
		s := &b.subjects[i]
		switch s.Kind {
		case rbacv1.UserKind:
			if s.Name == user {
				return s
			}
		case rbacv1.GroupKind:
			for _, g := range groups {
				if g == s.Name {
					return s
				}
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = namespace
			}
			if ns != "" && isServiceAccountUsername(user, ns, s.Name) {
				return s
			}
		}
	}
	return &rbacv1.Subject{}
}

func isServiceAccountUsername(user, namespace, name string) bool {
	rest, ok := strings.CutPrefix(user, ServiceAccountUsernamePrefix)
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, namespace)
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, ":")
	return ok && rest == name
}

// roleRules returns the rules of the role a binding in namespace refers to.
func (x *Index) roleRules(ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "Role":
		r, ok := x.roles[namespace][ref.Name]
		if !ok {
			return nil, apierrors.NewNotFound(roleResource, ref.Name)
		}
		return r.Rules, nil
	case "ClusterRole":
		r, ok := x.clusterRoles[ref.Name]
		if !ok {
			return nil, apierrors.NewNotFound(clusterRoleResource, ref.Name)
		}
		return r.Rules, nil
	}
	return nil, &unsupportedKindError{ref.Kind}
}

type unsupportedKindError struct{ kind string }

func (e *unsupportedKindError) Error() string {
	return "unsupported role reference kind: " + strconv.Quote(e.kind)
}
