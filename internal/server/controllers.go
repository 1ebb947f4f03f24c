package server

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/havre/havre/internal/auth/rbac"
	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/apiserviceavailability"
	"github.com/havre/havre/internal/controller/certificates"
	"github.com/havre/havre/internal/controller/crd"
	"github.com/havre/havre/internal/controller/garbagecollector"
	"github.com/havre/havre/internal/controller/gateway"
	"github.com/havre/havre/internal/controller/ingress"
	"github.com/havre/havre/internal/controller/namespace"
	"github.com/havre/havre/internal/controller/nodeipam"
	"github.com/havre/havre/internal/controller/validatingadmissionpolicystatus"
	"github.com/havre/havre/internal/controller/volume/snapshot"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// registered is one in-process controller of `havre server`.
type registered struct {
	name  string
	start controller.Starter
	// as is who the controller's own requests are made as (its reads
	// through the shared informers are made as system:kube-controller-manager).
	as identity
}

// controllers is the one table of the in-process controllers, as
// kube-controller-manager's NewControllerDescriptors: they are started in
// this order, on one shared informer factory. Each start function lives in
// controller_<name>.go (or below, for the small ones). Each runs as its own
// identity, as kube-controller-manager with
// --use-service-account-credentials: a kube-system ServiceAccount bound by
// the bootstrap policy to upstream's system:controller:<sa> ClusterRole (or
// to Havre's havre:controller:<sa> for Havre's own controllers), the
// scheduler as system:kube-scheduler; only what upstream runs inside
// kube-apiserver runs as the API server.
var controllers = []registered{
	{"namespace", startNamespace, serviceAccount("namespace-controller")},
	{"crd", startCRD, asAPIServer},
	{gateway.Name, startGateway, serviceAccount(gateway.Name)},
	{"garbagecollector", startGarbageCollector, serviceAccount("generic-garbage-collector")},
	{"nodeipam", startNodeIPAM, serviceAccount("node-controller")},
	{apiserviceavailability.Name, startAPIServiceAvailability, asAPIServer},
	{"clusterrole-aggregation", startClusterRoleAggregation, serviceAccount("clusterrole-aggregation-controller")},
	{certificates.Name, startCertificates, serviceAccount("certificates-controller")},
	{"cronjob", startCronJob, serviceAccount("cronjob-controller")},
	{"daemonset", startDaemonSet, serviceAccount("daemon-set-controller")},
	{"deployment", startDeployment, serviceAccount("deployment-controller")},
	{"disruption", startDisruption, serviceAccount("disruption-controller")},
	{"endpoints-controller", startEndpoints, serviceAccount("endpoint-controller")},
	{"ephemeral-volume-controller", startEphemeralVolume, serviceAccount("ephemeral-volume-controller")},
	{"endpointslice-controller", startEndpointSlice, serviceAccount("endpointslice-controller")},
	{"endpointslice-mirroring-controller", startEndpointSliceMirroring, serviceAccount("endpointslicemirroring-controller")},
	{ingress.Name, startIngress, serviceAccount(ingress.Name)},
	{"job", startJob, serviceAccount("job-controller")},
	{"kubernetes-endpoints", startKubernetesEndpoints, asAPIServer},
	{"nodelifecycle", startNodeLifecycle, serviceAccount("node-controller")},
	{"persistentvolume-binder-controller", startPersistentVolumeBinder, serviceAccount("persistent-volume-binder")},
	{"persistentvolume-protection-controller", startPVProtection, serviceAccount("pv-protection-controller")},
	{"persistentvolumeclaim-protection-controller", startPVCProtection, serviceAccount("pvc-protection-controller")},
	{"replicaset", startReplicaSet, serviceAccount("replicaset-controller")},
	{"root-ca-cert-publisher", startRootCACertPublisher, serviceAccount("root-ca-cert-publisher")},
	{"scheduler", startScheduler, asScheduler},
	{"service-lb-controller", startServiceLB, serviceAccount("service-lb-controller")},
	{"serviceaccount", startServiceAccount, serviceAccount("service-account-controller")},
	{snapshot.Name, startSnapshot, serviceAccount("snapshot-controller")},
	{"statefulset", startStatefulSet, serviceAccount("statefulset-controller")},
	{"ttl-after-finished", startTTLAfterFinished, serviceAccount("ttl-after-finished-controller")},
	{validatingadmissionpolicystatus.Name, startValidatingAdmissionPolicyStatus, serviceAccount("validatingadmissionpolicy-status-controller")},
}

// identity is who an in-process component authenticates as over
// loopback; the zero identity is the API server itself (system:masters).
type identity struct {
	user   string
	groups []string
}

// The identities of the in-process components.
var (
	// asAPIServer: the API server's own loops (upstream runs them inside
	// kube-apiserver on its loopback client).
	asAPIServer = identity{}
	// asScheduler is kube-scheduler's user, bound to system:kube-scheduler
	// and system:volume-scheduler.
	asScheduler = identity{user: "system:kube-scheduler"}
	// asControllerManager reads through the controllers' shared informers,
	// as kube-controller-manager's own identity (system:kube-controller-manager
	// may list and watch everything).
	asControllerManager = identity{user: "system:kube-controller-manager"}
)

// serviceAccount is the identity of the kube-system ServiceAccount name,
// as a ServiceAccount token would authenticate it.
func serviceAccount(name string) identity {
	return identity{user: rbac.ServiceAccountUsername(controllerNamespace, name),
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + controllerNamespace}}
}

// controllerNamespace holds the controllers' ServiceAccounts.
const controllerNamespace = "kube-system"

// serviceAccountName is the name of the ServiceAccount an identity is, or "".
func (id identity) serviceAccountName() string {
	name, ok := strings.CutPrefix(id.user, rbac.ServiceAccountUsernamePrefix+controllerNamespace+":")
	if !ok {
		return ""
	}
	return name
}

// enabled reports whether a controller runs under the --controllers
// selection, as kube-controller-manager decides: an explicit "-name" or
// "name" wins, then "*".
func enabled(name string, selection []string) bool {
	if len(selection) == 0 {
		return true
	}
	star := false
	for _, s := range selection {
		switch s {
		case name:
			return true
		case "-" + name:
			return false
		case "*":
			star = true
		}
	}
	return star
}

// checkSelection refuses names in a --controllers selection that name no
// controller.
func checkSelection(selection []string) error {
	known := map[string]bool{"*": true}
	var names []string
	for _, c := range controllers {
		known[c.name], known["-"+c.name] = true, true
		names = append(names, c.name)
	}
	for _, s := range selection {
		if !known[s] {
			slices.Sort(names)
			return fmt.Errorf("--controllers: %q is not a controller (known: %s)", s, strings.Join(names, ", "))
		}
	}
	return nil
}

func startNamespace(ctx context.Context, c *controller.Context) error {
	nsc := namespace.New(c.Client, c.Dynamic, c.Informers, c.Namespaced)
	nsc.SetExtraResources(func(ctx context.Context) ([]schema.GroupVersionResource, error) {
		return crd.Served(ctx, c.Dynamic, true)
	})
	go nsc.Run(ctx, 2)
	return nil
}

// startGarbageCollector starts the collector on metadata informers of its
// own for every resource it can delete.
func startGarbageCollector(ctx context.Context, c *controller.Context) error {
	gc, err := garbagecollector.New(c.Metadata, c.Collectable, c.Mapper)
	if err != nil {
		return err
	}
	// Custom resources come and go with their definitions.
	err = crd.Watch(ctx, c.Config, func(served []crd.Resource) {
		resources := make([]garbagecollector.Resource, len(served))
		for i, r := range served {
			resources[i] = garbagecollector.Resource{GroupVersionResource: r.GroupVersionResource, Kind: r.Kind, Namespaced: r.Namespaced}
		}
		gc.SetCustomResources(ctx, resources)
	})
	if err != nil {
		return err
	}
	go gc.Run(ctx, 4)
	return nil
}

// startNodeIPAM starts the controller giving nodes their pod CIDRs, when
// the server assigns them.
func startNodeIPAM(ctx context.Context, c *controller.Context) error {
	if c.Options.ClusterCIDR == "" {
		return nil
	}
	ipam, err := nodeipam.New(c.Client, c.Informers, c.Options.ClusterCIDR, nodeipam.DefaultNodeMaskV4)
	if err != nil {
		return err
	}
	go ipam.Run(ctx, 1)
	return nil
}
