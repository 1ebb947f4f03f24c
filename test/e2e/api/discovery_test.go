package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// expectedResource is one resource discovery must list.
type expectedResource struct {
	name       string // "deployments" or "deployments/scale"
	kind       string
	namespaced bool
	verbs      []string // must be included
	// group/version of the kind when it differs from the group version
	// serving it (subresources such as scale).
	kindGroupVersion string
}

var crud = []string{"create", "delete", "get", "list", "patch", "update", "watch"}

// expectedDiscovery lists, per group version, resources the API core must
// serve. It is not exhaustive: more resources may be served.
var expectedDiscovery = map[string][]expectedResource{
	"v1": {
		{name: "namespaces", kind: "Namespace", verbs: crud},
		{name: "namespaces/status", kind: "Namespace", verbs: []string{"get", "patch", "update"}},
		{name: "namespaces/finalize", kind: "Namespace", verbs: []string{"update"}},
		{name: "pods", kind: "Pod", namespaced: true, verbs: append([]string{"deletecollection"}, crud...)},
		{name: "pods/status", kind: "Pod", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "services", kind: "Service", namespaced: true, verbs: crud},
		{name: "services/status", kind: "Service", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "endpoints", kind: "Endpoints", namespaced: true, verbs: crud},
		{name: "configmaps", kind: "ConfigMap", namespaced: true, verbs: append([]string{"deletecollection"}, crud...)},
		{name: "secrets", kind: "Secret", namespaced: true, verbs: append([]string{"deletecollection"}, crud...)},
		{name: "serviceaccounts", kind: "ServiceAccount", namespaced: true, verbs: crud},
		{name: "nodes", kind: "Node", verbs: crud},
		{name: "nodes/status", kind: "Node", verbs: []string{"get", "patch", "update"}},
		{name: "events", kind: "Event", namespaced: true, verbs: crud},
		{name: "persistentvolumes", kind: "PersistentVolume", verbs: crud},
		{name: "persistentvolumeclaims", kind: "PersistentVolumeClaim", namespaced: true, verbs: crud},
		{name: "resourcequotas", kind: "ResourceQuota", namespaced: true, verbs: crud},
		{name: "limitranges", kind: "LimitRange", namespaced: true, verbs: crud},
	},
	"apps/v1": {
		{name: "deployments", kind: "Deployment", namespaced: true, verbs: append([]string{"deletecollection"}, crud...)},
		{name: "deployments/status", kind: "Deployment", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "deployments/scale", kind: "Scale", kindGroupVersion: "autoscaling/v1", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "replicasets", kind: "ReplicaSet", namespaced: true, verbs: crud},
		{name: "replicasets/scale", kind: "Scale", kindGroupVersion: "autoscaling/v1", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "statefulsets", kind: "StatefulSet", namespaced: true, verbs: crud},
		{name: "statefulsets/scale", kind: "Scale", kindGroupVersion: "autoscaling/v1", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "daemonsets", kind: "DaemonSet", namespaced: true, verbs: crud},
		{name: "controllerrevisions", kind: "ControllerRevision", namespaced: true, verbs: crud},
	},
	"batch/v1": {
		{name: "jobs", kind: "Job", namespaced: true, verbs: crud},
		{name: "jobs/status", kind: "Job", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "cronjobs", kind: "CronJob", namespaced: true, verbs: crud},
	},
	"coordination.k8s.io/v1": {
		{name: "leases", kind: "Lease", namespaced: true, verbs: crud},
	},
	"discovery.k8s.io/v1": {
		{name: "endpointslices", kind: "EndpointSlice", namespaced: true, verbs: crud},
	},
	"networking.k8s.io/v1": {
		{name: "ingresses", kind: "Ingress", namespaced: true, verbs: crud},
		{name: "ingresses/status", kind: "Ingress", namespaced: true, verbs: []string{"get", "patch", "update"}},
		{name: "ingressclasses", kind: "IngressClass", verbs: crud},
		{name: "networkpolicies", kind: "NetworkPolicy", namespaced: true, verbs: crud},
	},
	"storage.k8s.io/v1": {
		{name: "storageclasses", kind: "StorageClass", verbs: crud},
		{name: "csistoragecapacities", kind: "CSIStorageCapacity", namespaced: true, verbs: crud},
		{name: "csidrivers", kind: "CSIDriver", verbs: append([]string{"deletecollection"}, crud...)},
		{name: "csinodes", kind: "CSINode", verbs: append([]string{"deletecollection"}, crud...)},
		{name: "csinodes/status", kind: "CSINode", verbs: []string{"get", "patch", "update"}},
		{name: "volumeattachments", kind: "VolumeAttachment", verbs: append([]string{"deletecollection"}, crud...)},
		{name: "volumeattachments/status", kind: "VolumeAttachment", verbs: []string{"get", "patch", "update"}},
		{name: "volumeattributesclasses", kind: "VolumeAttributesClass", verbs: append([]string{"deletecollection"}, crud...)},
	},
	"autoscaling/v2": {
		{name: "horizontalpodautoscalers", kind: "HorizontalPodAutoscaler", namespaced: true, verbs: crud},
	},
	"policy/v1": {
		{name: "poddisruptionbudgets", kind: "PodDisruptionBudget", namespaced: true, verbs: crud},
	},
	"events.k8s.io/v1": {
		{name: "events", kind: "Event", namespaced: true, verbs: crud},
	},
	"rbac.authorization.k8s.io/v1": {
		{name: "roles", kind: "Role", namespaced: true, verbs: append([]string{"deletecollection"}, crud...)},
		{name: "rolebindings", kind: "RoleBinding", namespaced: true, verbs: crud},
		{name: "clusterroles", kind: "ClusterRole", verbs: crud},
		{name: "clusterrolebindings", kind: "ClusterRoleBinding", verbs: crud},
	},
	"scheduling.k8s.io/v1": {
		{name: "priorityclasses", kind: "PriorityClass", verbs: crud},
	},
}

func TestDiscovery(t *testing.T) {
	s := startServer(t)
	dc := s.Clientset().Discovery()

	t.Run("GroupsAndResources", func(t *testing.T) {
		_, lists, err := dc.ServerGroupsAndResources()
		if err != nil {
			t.Fatalf("ServerGroupsAndResources: %v", err)
		}
		byGV := map[string]*metav1.APIResourceList{}
		for _, l := range lists {
			byGV[l.GroupVersion] = l
		}
		for gv, resources := range expectedDiscovery {
			list := byGV[gv]
			if list == nil {
				t.Errorf("group version %s is not served", gv)
				continue
			}
			for _, want := range resources {
				i := slices.IndexFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == want.name })
				if i < 0 {
					t.Errorf("%s: resource %s missing", gv, want.name)
					continue
				}
				r := list.APIResources[i]
				if r.Kind != want.kind || r.Namespaced != want.namespaced {
					t.Errorf("%s %s: kind %q namespaced %v, want %q %v", gv, r.Name, r.Kind, r.Namespaced, want.kind, want.namespaced)
				}
				if want.kindGroupVersion != "" {
					if got := r.Group + "/" + r.Version; got != want.kindGroupVersion {
						t.Errorf("%s %s: kind group/version %q, want %q", gv, r.Name, got, want.kindGroupVersion)
					}
				}
				for _, v := range want.verbs {
					if !slices.Contains(r.Verbs, v) {
						t.Errorf("%s %s: verbs %v lack %q", gv, r.Name, r.Verbs, v)
					}
				}
				if !strings.Contains(r.Name, "/") && r.SingularName == "" {
					t.Errorf("%s %s: no singularName", gv, r.Name)
				}
			}
		}
	})

	t.Run("PreferredVersions", func(t *testing.T) {
		groups, err := dc.ServerGroups()
		if err != nil {
			t.Fatal(err)
		}
		served := map[string]string{}
		for _, g := range groups.Groups {
			served[g.Name] = g.PreferredVersion.GroupVersion
		}
		for gv := range expectedDiscovery {
			group := ""
			if i := strings.Index(gv, "/"); i >= 0 {
				group = gv[:i]
			}
			if _, ok := served[group]; !ok {
				t.Errorf("group %q missing from /api and /apis", group)
			}
		}
		if served["apps"] != "apps/v1" {
			t.Errorf("apps preferred version %q", served["apps"])
		}
	})

	t.Run("Version", func(t *testing.T) {
		v, err := dc.ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		sv, err := utilversion.ParseSemantic(v.GitVersion)
		if err != nil || !strings.HasPrefix(v.GitVersion, "v") {
			t.Fatalf("gitVersion %q is not a v-prefixed semantic version: %v", v.GitVersion, err)
		}
		if v.Major != fmt.Sprint(sv.Major()) || strings.TrimSuffix(v.Minor, "+") != fmt.Sprint(sv.Minor()) {
			t.Errorf("major %q minor %q do not match gitVersion %q", v.Major, v.Minor, v.GitVersion)
		}
		if v.GoVersion == "" || v.Platform == "" {
			t.Errorf("version lacks goVersion or platform: %+v", v)
		}
	})

	t.Run("KubectlAPIResources", func(t *testing.T) {
		out := s.MustKubectl(t, "api-resources")
		for _, want := range [][]string{
			{"configmaps", "cm", "v1", "true", "ConfigMap"},
			{"namespaces", "ns", "v1", "false", "Namespace"},
			{"deployments", "deploy", "apps/v1", "true", "Deployment"},
			{"jobs", "batch/v1", "true", "Job"},
			{"leases", "coordination.k8s.io/v1", "true", "Lease"},
			{"priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass"},
		} {
			if !hasLineWithFields(out, want) {
				t.Errorf("kubectl api-resources has no line with %v:\n%s", want, out)
			}
		}
		wide := s.MustKubectl(t, "api-resources", "--api-group=apps", "-o", "name")
		if !strings.Contains(wide, "deployments.apps") {
			t.Errorf("kubectl api-resources --api-group=apps -o name:\n%s", wide)
		}
	})

	t.Run("KubectlAPIVersions", func(t *testing.T) {
		out := s.MustKubectl(t, "api-versions")
		lines := strings.Fields(out)
		for gv := range expectedDiscovery {
			if !slices.Contains(lines, gv) {
				t.Errorf("kubectl api-versions lacks %s:\n%s", gv, out)
			}
		}
	})
}

// hasLineWithFields reports whether some line of out has exactly the given
// whitespace-separated fields.
func hasLineWithFields(out string, fields []string) bool {
	for _, line := range strings.Split(out, "\n") {
		if slices.Equal(strings.Fields(line), fields) {
			return true
		}
	}
	return false
}
