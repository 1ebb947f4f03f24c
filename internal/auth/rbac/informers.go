package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Register feeds the index from the factory's informers of the four RBAC
// kinds, and returns their HasSynced functions.
func (x *Index) Register(f informers.SharedInformerFactory) ([]cache.InformerSynced, error) {
	rbac := f.Rbac().V1()
	var synced []cache.InformerSynced
	for _, reg := range []struct {
		informer cache.SharedIndexInformer
		set      func(obj any)
		del      func(obj any)
	}{
		{rbac.ClusterRoles().Informer(),
			func(o any) { x.SetClusterRole(o.(*rbacv1.ClusterRole)) },
			func(o any) { x.DeleteClusterRole(o.(*rbacv1.ClusterRole).Name) }},
		{rbac.Roles().Informer(),
			func(o any) { x.SetRole(o.(*rbacv1.Role)) },
			func(o any) { r := o.(*rbacv1.Role); x.DeleteRole(r.Namespace, r.Name) }},
		{rbac.ClusterRoleBindings().Informer(),
			func(o any) { x.SetClusterRoleBinding(o.(*rbacv1.ClusterRoleBinding)) },
			func(o any) { x.DeleteClusterRoleBinding(o.(*rbacv1.ClusterRoleBinding).Name) }},
		{rbac.RoleBindings().Informer(),
			func(o any) { x.SetRoleBinding(o.(*rbacv1.RoleBinding)) },
			func(o any) { b := o.(*rbacv1.RoleBinding); x.DeleteRoleBinding(b.Namespace, b.Name) }},
	} {
		set, del := reg.set, reg.del
		h, err := reg.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    set,
			UpdateFunc: func(_, o any) { set(o) },
			DeleteFunc: func(o any) {
				if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = t.Obj
				}
				del(o)
			},
		})
		if err != nil {
			return nil, err
		}
		synced = append(synced, h.HasSynced)
	}
	return synced, nil
}
