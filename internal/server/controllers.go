package server

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/crd"
	"github.com/havre/havre/internal/controller/garbagecollector"
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
}

// controllers is the one table of the in-process controllers, as
// kube-controller-manager's NewControllerDescriptors: they are started in
// this order, on one shared informer factory. Each start function lives in
// controller_<name>.go (or below, for the small ones).
var controllers = []registered{
	{"namespace", startNamespace},
	{"crd", startCRD},
	{"garbagecollector", startGarbageCollector},
	{"nodeipam", startNodeIPAM},
	{"clusterrole-aggregation", startClusterRoleAggregation},
	{"cronjob", startCronJob},
	{"daemonset", startDaemonSet},
	{"deployment", startDeployment},
	{"disruption", startDisruption},
	{"endpoints-controller", startEndpoints},
	{"ephemeral-volume-controller", startEphemeralVolume},
	{"endpointslice-controller", startEndpointSlice},
	{"endpointslice-mirroring-controller", startEndpointSliceMirroring},
	{"job", startJob},
	{"kubernetes-endpoints", startKubernetesEndpoints},
	{"nodelifecycle", startNodeLifecycle},
	{"persistentvolume-binder-controller", startPersistentVolumeBinder},
	{"persistentvolume-protection-controller", startPVProtection},
	{"persistentvolumeclaim-protection-controller", startPVCProtection},
	{"replicaset", startReplicaSet},
	{"root-ca-cert-publisher", startRootCACertPublisher},
	{"scheduler", startScheduler},
	{"service-lb-controller", startServiceLB},
	{"serviceaccount", startServiceAccount},
	{snapshot.Name, startSnapshot},
	{"statefulset", startStatefulSet},
	{"ttl-after-finished", startTTLAfterFinished},
	{validatingadmissionpolicystatus.Name, startValidatingAdmissionPolicyStatus},
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
