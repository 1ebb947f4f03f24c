package printers

import (
	"fmt"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The rbac.authorization.k8s.io printers: roles show when they were created
// (as a date, not an age), bindings their role and, with -o wide, their
// subjects by kind.
func init() {
	rbac := rbacv1.SchemeGroupVersion
	roleColumns := []metav1.TableColumnDefinition{
		nameColumn,
		column("Created At", "date", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]),
	}
	bindingColumns := []metav1.TableColumnDefinition{
		nameColumn,
		column("Role", "string", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]),
		ageColumn,
		wideColumn("Users", "string", "Users in the roleBinding"),
		wideColumn("Groups", "string", "Groups in the roleBinding"),
		wideColumn("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
	}
	register(rbac.WithKind("Role"), roleColumns, func(r *rbacv1.Role) (metav1.TableRow, error) {
		return cells(r.Name, createdAt(r.CreationTimestamp))
	})
	register(rbac.WithKind("ClusterRole"), roleColumns, func(r *rbacv1.ClusterRole) (metav1.TableRow, error) {
		return cells(r.Name, createdAt(r.CreationTimestamp))
	})
	register(rbac.WithKind("RoleBinding"), bindingColumns, func(b *rbacv1.RoleBinding) (metav1.TableRow, error) {
		return bindingRow(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp)
	})
	register(rbac.WithKind("ClusterRoleBinding"), bindingColumns, func(b *rbacv1.ClusterRoleBinding) (metav1.TableRow, error) {
		return bindingRow(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp)
	})
}

func createdAt(ts metav1.Time) string { return ts.UTC().Format(time.RFC3339) }

func bindingRow(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time) (metav1.TableRow, error) {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return cells(name, fmt.Sprintf("%s/%s", ref.Kind, ref.Name), age(created),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "))
}
