// Package catalog lists every resource Havre serves, in discovery order, with
// the strategy that governs it. It is the one place a new kind is added.
package catalog

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/admissionregistration"
	"github.com/havre/havre/internal/registry/apiextensions"
	"github.com/havre/havre/internal/registry/apiregistration"
	appsreg "github.com/havre/havre/internal/registry/apps"
	"github.com/havre/havre/internal/registry/authorization"
	"github.com/havre/havre/internal/registry/autoscaling"
	batchreg "github.com/havre/havre/internal/registry/batch"
	"github.com/havre/havre/internal/registry/coordination"
	corereg "github.com/havre/havre/internal/registry/core"
	"github.com/havre/havre/internal/registry/discovery"
	"github.com/havre/havre/internal/registry/events"
	"github.com/havre/havre/internal/registry/networking"
	"github.com/havre/havre/internal/registry/policy"
	rbacreg "github.com/havre/havre/internal/registry/rbac"
	"github.com/havre/havre/internal/registry/scheduling"
	"github.com/havre/havre/internal/registry/storage"
)

func gvr(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}

var (
	scaleKind   = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
	evictionGVK = schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}
)

func status(gv schema.GroupVersion, kind string) registry.Subresource {
	return registry.Subresource{Name: registry.Status, Kind: gv.WithKind(kind), Verbs: registry.VerbsStatus}
}

func scale() registry.Subresource {
	return registry.Subresource{Name: registry.Scale, Kind: scaleKind, Verbs: registry.VerbsStatus}
}

// Resources returns a fresh catalog of every served resource.
func Resources() []*registry.Resource {
	core := schema.GroupVersion{Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	batch := schema.GroupVersion{Group: "batch", Version: "v1"}
	storageGV := schema.GroupVersion{Group: "storage.k8s.io", Version: "v1"}
	all := []string{"all"}
	return []*registry.Resource{
		// core/v1
		{GroupVersionResource: gvr("", "v1", "configmaps"), Kind: "ConfigMap", Singular: "configmap", Namespaced: true,
			ShortNames: []string{"cm"}, Verbs: registry.VerbsAll, Strategy: corereg.ConfigMapStrategy{}},
		{GroupVersionResource: gvr("", "v1", "endpoints"), Kind: "Endpoints", Singular: "endpoints", Namespaced: true,
			ShortNames: []string{"ep"}, Verbs: registry.VerbsAll, Strategy: corereg.EndpointsStrategy{}},
		{GroupVersionResource: gvr("", "v1", "events"), Kind: "Event", Singular: "event", Namespaced: true,
			ShortNames: []string{"ev"}, Verbs: registry.VerbsAll, Strategy: corereg.EventStrategy{}},
		{GroupVersionResource: gvr("", "v1", "limitranges"), Kind: "LimitRange", Singular: "limitrange", Namespaced: true,
			ShortNames: []string{"limits"}, Verbs: registry.VerbsAll, Strategy: corereg.LimitRangeStrategy{}},
		{GroupVersionResource: gvr("", "v1", "namespaces"), Kind: "Namespace", Singular: "namespace", Namespaced: false,
			ShortNames: []string{"ns"}, Verbs: registry.VerbsNoCollection, Strategy: corereg.NamespaceStrategy{},
			Subresources: []registry.Subresource{
				{Name: registry.Finalize, Kind: core.WithKind("Namespace"), Verbs: []string{"update"}},
				status(core, "Namespace"),
			}},
		{GroupVersionResource: gvr("", "v1", "nodes"), Kind: "Node", Singular: "node", Namespaced: false,
			ShortNames: []string{"no"}, Verbs: registry.VerbsAll, Strategy: corereg.NodeStrategy{},
			Subresources: []registry.Subresource{
				{Name: registry.Proxy, Kind: core.WithKind("NodeProxyOptions"), Verbs: []string{"create", "delete", "get", "patch", "update"}},
				status(core, "Node"),
			}},
		{GroupVersionResource: gvr("", "v1", "persistentvolumeclaims"), Kind: "PersistentVolumeClaim", Singular: "persistentvolumeclaim", Namespaced: true,
			ShortNames: []string{"pvc"}, Verbs: registry.VerbsAll, Strategy: corereg.PersistentVolumeClaimStrategy{},
			Subresources: []registry.Subresource{status(core, "PersistentVolumeClaim")}},
		{GroupVersionResource: gvr("", "v1", "persistentvolumes"), Kind: "PersistentVolume", Singular: "persistentvolume", Namespaced: false,
			ShortNames: []string{"pv"}, Verbs: registry.VerbsAll, Strategy: corereg.PersistentVolumeStrategy{},
			Subresources: []registry.Subresource{status(core, "PersistentVolume")}},
		{GroupVersionResource: gvr("", "v1", "pods"), Kind: "Pod", Singular: "pod", Namespaced: true,
			ShortNames: []string{"po"}, Categories: all, Verbs: registry.VerbsAll, Strategy: corereg.PodStrategy{},
			Subresources: []registry.Subresource{
				{Name: registry.Attach, Kind: core.WithKind("PodAttachOptions"), Verbs: []string{"create", "get"}},
				{Name: registry.Binding, Kind: core.WithKind("Binding"), Verbs: registry.VerbsCreate},
				{Name: registry.Eviction, Kind: evictionGVK, Verbs: registry.VerbsCreate},
				{Name: registry.Exec, Kind: core.WithKind("PodExecOptions"), Verbs: []string{"create", "get"}},
				{Name: registry.Log, Kind: core.WithKind("Pod"), Verbs: []string{"get"}},
				{Name: registry.PortForward, Kind: core.WithKind("PodPortForwardOptions"), Verbs: []string{"create", "get"}},
				{Name: registry.Proxy, Kind: core.WithKind("PodProxyOptions"), Verbs: []string{"create", "delete", "get", "patch", "update"}},
				status(core, "Pod"),
			}},
		{GroupVersionResource: gvr("", "v1", "resourcequotas"), Kind: "ResourceQuota", Singular: "resourcequota", Namespaced: true,
			ShortNames: []string{"quota"}, Verbs: registry.VerbsAll, Strategy: corereg.ResourceQuotaStrategy{},
			Subresources: []registry.Subresource{status(core, "ResourceQuota")}},
		{GroupVersionResource: gvr("", "v1", "secrets"), Kind: "Secret", Singular: "secret", Namespaced: true,
			Verbs: registry.VerbsAll, Strategy: corereg.SecretStrategy{}},
		{GroupVersionResource: gvr("", "v1", "serviceaccounts"), Kind: "ServiceAccount", Singular: "serviceaccount", Namespaced: true,
			ShortNames: []string{"sa"}, Verbs: registry.VerbsAll, Strategy: corereg.ServiceAccountStrategy{}},
		{GroupVersionResource: gvr("", "v1", "services"), Kind: "Service", Singular: "service", Namespaced: true,
			ShortNames: []string{"svc"}, Categories: all, Verbs: registry.VerbsAll, Strategy: corereg.ServiceStrategy{},
			Subresources: []registry.Subresource{
				{Name: registry.Proxy, Kind: core.WithKind("ServiceProxyOptions"), Verbs: []string{"create", "delete", "get", "patch", "update"}},
				status(core, "Service"),
			}},

		// admissionregistration.k8s.io/v1: admission policies
		{GroupVersionResource: gvr("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicies"), Kind: "MutatingAdmissionPolicy",
			Singular: "mutatingadmissionpolicy", Namespaced: false, Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll,
			Strategy: admissionregistration.MutatingAdmissionPolicyStrategy{}},
		{GroupVersionResource: gvr("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicybindings"), Kind: "MutatingAdmissionPolicyBinding",
			Singular: "mutatingadmissionpolicybinding", Namespaced: false, Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll,
			Strategy: admissionregistration.MutatingAdmissionPolicyBindingStrategy{}},
		{GroupVersionResource: gvr("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies"), Kind: "ValidatingAdmissionPolicy",
			Singular: "validatingadmissionpolicy", Namespaced: false, Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll,
			Strategy:     admissionregistration.ValidatingAdmissionPolicyStrategy{},
			Subresources: []registry.Subresource{status(schema.GroupVersion{Group: "admissionregistration.k8s.io", Version: "v1"}, "ValidatingAdmissionPolicy")}},
		{GroupVersionResource: gvr("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings"), Kind: "ValidatingAdmissionPolicyBinding",
			Singular: "validatingadmissionpolicybinding", Namespaced: false, Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll,
			Strategy: admissionregistration.ValidatingAdmissionPolicyBindingStrategy{}},

		// apps/v1
		{GroupVersionResource: gvr("apps", "v1", "controllerrevisions"), Kind: "ControllerRevision", Singular: "controllerrevision", Namespaced: true,
			Verbs: registry.VerbsAll, Strategy: appsreg.ControllerRevisionStrategy{}},
		{GroupVersionResource: gvr("apps", "v1", "daemonsets"), Kind: "DaemonSet", Singular: "daemonset", Namespaced: true,
			ShortNames: []string{"ds"}, Categories: all, Verbs: registry.VerbsAll, Strategy: appsreg.DaemonSetStrategy{},
			Subresources: []registry.Subresource{status(apps, "DaemonSet")}},
		{GroupVersionResource: gvr("apps", "v1", "deployments"), Kind: "Deployment", Singular: "deployment", Namespaced: true,
			ShortNames: []string{"deploy"}, Categories: all, Verbs: registry.VerbsAll, Strategy: appsreg.DeploymentStrategy{},
			Subresources: []registry.Subresource{scale(), status(apps, "Deployment")}},
		{GroupVersionResource: gvr("apps", "v1", "replicasets"), Kind: "ReplicaSet", Singular: "replicaset", Namespaced: true,
			ShortNames: []string{"rs"}, Categories: all, Verbs: registry.VerbsAll, Strategy: appsreg.ReplicaSetStrategy{},
			Subresources: []registry.Subresource{scale(), status(apps, "ReplicaSet")}},
		{GroupVersionResource: gvr("apps", "v1", "statefulsets"), Kind: "StatefulSet", Singular: "statefulset", Namespaced: true,
			ShortNames: []string{"sts"}, Categories: all, Verbs: registry.VerbsAll, Strategy: appsreg.StatefulSetStrategy{},
			Subresources: []registry.Subresource{scale(), status(apps, "StatefulSet")}},

		// authentication.k8s.io/v1 and authorization.k8s.io/v1: reviews,
		// answered and never stored.
		{GroupVersionResource: gvr("authentication.k8s.io", "v1", "selfsubjectreviews"), Kind: "SelfSubjectReview", Singular: "selfsubjectreview", Namespaced: false,
			Verbs: registry.VerbsCreate, Strategy: registry.DefaultStrategy{}, Virtual: true},
		{GroupVersionResource: gvr("authorization.k8s.io", "v1", "localsubjectaccessreviews"), Kind: "LocalSubjectAccessReview", Singular: "localsubjectaccessreview", Namespaced: true,
			Verbs: registry.VerbsCreate, Strategy: authorization.LocalSubjectAccessReviewStrategy{}, Virtual: true},
		{GroupVersionResource: gvr("authorization.k8s.io", "v1", "selfsubjectaccessreviews"), Kind: "SelfSubjectAccessReview", Singular: "selfsubjectaccessreview", Namespaced: false,
			Verbs: registry.VerbsCreate, Strategy: authorization.SelfSubjectAccessReviewStrategy{}, Virtual: true},
		{GroupVersionResource: gvr("authorization.k8s.io", "v1", "selfsubjectrulesreviews"), Kind: "SelfSubjectRulesReview", Singular: "selfsubjectrulesreview", Namespaced: false,
			Verbs: registry.VerbsCreate, Strategy: registry.DefaultStrategy{}, Virtual: true},
		{GroupVersionResource: gvr("authorization.k8s.io", "v1", "subjectaccessreviews"), Kind: "SubjectAccessReview", Singular: "subjectaccessreview", Namespaced: false,
			Verbs: registry.VerbsCreate, Strategy: authorization.SubjectAccessReviewStrategy{}, Virtual: true},

		// autoscaling/v2
		{GroupVersionResource: gvr("autoscaling", "v2", "horizontalpodautoscalers"), Kind: "HorizontalPodAutoscaler", Singular: "horizontalpodautoscaler", Namespaced: true,
			ShortNames: []string{"hpa"}, Categories: all, Verbs: registry.VerbsAll, Strategy: autoscaling.HorizontalPodAutoscalerStrategy{},
			Subresources: []registry.Subresource{status(schema.GroupVersion{Group: "autoscaling", Version: "v2"}, "HorizontalPodAutoscaler")}},

		// batch/v1
		{GroupVersionResource: gvr("batch", "v1", "cronjobs"), Kind: "CronJob", Singular: "cronjob", Namespaced: true,
			ShortNames: []string{"cj"}, Categories: all, Verbs: registry.VerbsAll, Strategy: batchreg.CronJobStrategy{},
			Subresources: []registry.Subresource{status(batch, "CronJob")}},
		{GroupVersionResource: gvr("batch", "v1", "jobs"), Kind: "Job", Singular: "job", Namespaced: true,
			Categories: all, Verbs: registry.VerbsAll, Strategy: batchreg.JobStrategy{},
			Subresources: []registry.Subresource{status(batch, "Job")}},

		// coordination.k8s.io/v1
		{GroupVersionResource: gvr("coordination.k8s.io", "v1", "leases"), Kind: "Lease", Singular: "lease", Namespaced: true,
			Verbs: registry.VerbsAll, Strategy: coordination.LeaseStrategy{}},

		// discovery.k8s.io/v1
		{GroupVersionResource: gvr("discovery.k8s.io", "v1", "endpointslices"), Kind: "EndpointSlice", Singular: "endpointslice", Namespaced: true,
			Verbs: registry.VerbsAll, Strategy: discovery.EndpointSliceStrategy{}},

		// events.k8s.io/v1
		{GroupVersionResource: gvr("events.k8s.io", "v1", "events"), Kind: "Event", Singular: "event", Namespaced: true,
			ShortNames: []string{"ev"}, Verbs: registry.VerbsAll, Strategy: events.EventStrategy{}},

		// networking.k8s.io/v1
		{GroupVersionResource: gvr("networking.k8s.io", "v1", "ingressclasses"), Kind: "IngressClass", Singular: "ingressclass", Namespaced: false,
			Verbs: registry.VerbsAll, Strategy: networking.IngressClassStrategy{}},
		{GroupVersionResource: gvr("networking.k8s.io", "v1", "ingresses"), Kind: "Ingress", Singular: "ingress", Namespaced: true,
			ShortNames: []string{"ing"}, Verbs: registry.VerbsAll, Strategy: networking.IngressStrategy{},
			Subresources: []registry.Subresource{status(schema.GroupVersion{Group: "networking.k8s.io", Version: "v1"}, "Ingress")}},
		{GroupVersionResource: gvr("networking.k8s.io", "v1", "networkpolicies"), Kind: "NetworkPolicy", Singular: "networkpolicy", Namespaced: true,
			ShortNames: []string{"netpol"}, Verbs: registry.VerbsAll, Strategy: networking.NetworkPolicyStrategy{}},

		// admissionregistration.k8s.io/v1
		{GroupVersionResource: gvr("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"), Kind: "MutatingWebhookConfiguration",
			Singular: "mutatingwebhookconfiguration", Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll,
			Strategy: admissionregistration.MutatingWebhookConfigurationStrategy{}},
		{GroupVersionResource: gvr("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"), Kind: "ValidatingWebhookConfiguration",
			Singular: "validatingwebhookconfiguration", Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll,
			Strategy: admissionregistration.ValidatingWebhookConfigurationStrategy{}},
		// apiextensions.k8s.io/v1
		{GroupVersionResource: gvr("apiextensions.k8s.io", "v1", "customresourcedefinitions"), Kind: "CustomResourceDefinition",
			Singular: "customresourcedefinition", Namespaced: false, ShortNames: []string{"crd", "crds"}, Categories: []string{"api-extensions"},
			Verbs: registry.VerbsAll, Strategy: apiextensions.CustomResourceDefinitionStrategy{},
			Subresources: []registry.Subresource{status(schema.GroupVersion{Group: "apiextensions.k8s.io", Version: "v1"}, "CustomResourceDefinition")}},

		// apiregistration.k8s.io/v1
		{GroupVersionResource: gvr("apiregistration.k8s.io", "v1", "apiservices"), Kind: "APIService", Singular: "apiservice", Namespaced: false,
			Categories: []string{"api-extensions"}, Verbs: registry.VerbsAll, Strategy: apiregistration.APIServiceStrategy{},
			Subresources: []registry.Subresource{status(schema.GroupVersion{Group: "apiregistration.k8s.io", Version: "v1"}, "APIService")}},

		// policy/v1
		{GroupVersionResource: gvr("policy", "v1", "poddisruptionbudgets"), Kind: "PodDisruptionBudget", Singular: "poddisruptionbudget", Namespaced: true,
			ShortNames: []string{"pdb"}, Verbs: registry.VerbsAll, Strategy: policy.PodDisruptionBudgetStrategy{},
			Subresources: []registry.Subresource{status(schema.GroupVersion{Group: "policy", Version: "v1"}, "PodDisruptionBudget")}},

		// rbac.authorization.k8s.io/v1
		{GroupVersionResource: gvr("rbac.authorization.k8s.io", "v1", "clusterrolebindings"), Kind: "ClusterRoleBinding", Singular: "clusterrolebinding", Namespaced: false,
			Verbs: registry.VerbsAll, Strategy: rbacreg.ClusterRoleBindingStrategy{}},
		{GroupVersionResource: gvr("rbac.authorization.k8s.io", "v1", "clusterroles"), Kind: "ClusterRole", Singular: "clusterrole", Namespaced: false,
			Verbs: registry.VerbsAll, Strategy: rbacreg.ClusterRoleStrategy{}},
		{GroupVersionResource: gvr("rbac.authorization.k8s.io", "v1", "rolebindings"), Kind: "RoleBinding", Singular: "rolebinding", Namespaced: true,
			Verbs: registry.VerbsAll, Strategy: rbacreg.RoleBindingStrategy{}},
		{GroupVersionResource: gvr("rbac.authorization.k8s.io", "v1", "roles"), Kind: "Role", Singular: "role", Namespaced: true,
			Verbs: registry.VerbsAll, Strategy: rbacreg.RoleStrategy{}},

		// scheduling.k8s.io/v1
		{GroupVersionResource: gvr("scheduling.k8s.io", "v1", "priorityclasses"), Kind: "PriorityClass", Singular: "priorityclass", Namespaced: false,
			ShortNames: []string{"pc"}, Verbs: registry.VerbsAll, Strategy: scheduling.PriorityClassStrategy{}},

		// storage.k8s.io/v1
		{GroupVersionResource: gvr("storage.k8s.io", "v1", "storageclasses"), Kind: "StorageClass", Singular: "storageclass", Namespaced: false,
			ShortNames: []string{"sc"}, Verbs: registry.VerbsAll, Strategy: storage.StorageClassStrategy{}},
		{GroupVersionResource: gvr("storage.k8s.io", "v1", "csistoragecapacities"), Kind: "CSIStorageCapacity", Singular: "csistoragecapacity",
			Namespaced: true, Verbs: registry.VerbsAll, Strategy: storage.CSIStorageCapacityStrategy{}},
		{GroupVersionResource: gvr("storage.k8s.io", "v1", "csidrivers"), Kind: "CSIDriver", Singular: "csidriver", Namespaced: false,
			Verbs: registry.VerbsAll, Strategy: storage.CSIDriverStrategy{}},
		{GroupVersionResource: gvr("storage.k8s.io", "v1", "csinodes"), Kind: "CSINode", Singular: "csinode", Namespaced: false,
			Verbs: registry.VerbsAll, Strategy: storage.CSINodeStrategy{},
			Subresources: []registry.Subresource{status(storageGV, "CSINode")}},
		{GroupVersionResource: gvr("storage.k8s.io", "v1", "volumeattachments"), Kind: "VolumeAttachment", Singular: "volumeattachment",
			Namespaced: false, Verbs: registry.VerbsAll, Strategy: storage.VolumeAttachmentStrategy{},
			Subresources: []registry.Subresource{status(storageGV, "VolumeAttachment")}},
		{GroupVersionResource: gvr("storage.k8s.io", "v1", "volumeattributesclasses"), Kind: "VolumeAttributesClass",
			Singular: "volumeattributesclass", Namespaced: false, ShortNames: []string{"vac"}, Verbs: registry.VerbsAll,
			Strategy: storage.VolumeAttributesClassStrategy{}},
	}
}
