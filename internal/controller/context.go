// Package controller holds what the in-process controllers of `havre
// server` share: the Context they are built from and the worker loop that
// drains their queues (RunWorkers, Worker). Each controller lives in
// its own package below this one and is registered in internal/server.
package controller

import (
	"context"
	"time"

	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Context is what a controller is built from. Controllers share one
// informer factory; it is started after every controller has asked for its
// informers.
type Context struct {
	// Config reaches the API server over loopback as the controller's own
	// identity (Client, Dynamic and Metadata are built on it); the shared
	// Informers read as kube-controller-manager's. See As.
	Config    *rest.Config
	Client    kubernetes.Interface
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	// Mapper maps every served kind to its resource.
	Mapper meta.RESTMapper
	// Namespaced lists the served namespaced resources that are stored
	// (not the reviews); Collectable the resources that can be listed,
	// watched and deleted.
	Namespaced, Collectable []schema.GroupVersionResource
	// Options are the server's controller options.
	Options Options
}

// As returns a copy of c whose Config and clients authenticate with cfg
// (a controller's own identity); the informers, mapper and options are
// shared.
func (c *Context) As(cfg *rest.Config) (*Context, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cc := *c
	cc.Config, cc.Client, cc.Dynamic, cc.Metadata = cfg, client, dyn, meta
	return &cc, nil
}

// Options are the controller settings `havre server` takes as flags.
type Options struct {
	// ClusterCIDR is where node pod CIDRs come from; empty disables node IPAM.
	ClusterCIDR string
	// SchedulerConfig is the path of a scheduler configuration file; empty
	// means the defaults.
	SchedulerConfig string
	// NodeMonitorGracePeriod is how long a node may miss heartbeats before
	// it is marked NotReady/Unknown (0: 40s as upstream).
	NodeMonitorGracePeriodSeconds int64
	// Controllers selects the controllers to run, as kube-controller-manager's
	// --controllers: "*" is every one, "name" enables and "-name" disables
	// one. Empty means "*".
	Controllers []string
	// DefaultNotReadyTolerationSeconds and DefaultUnreachableTolerationSeconds
	// are the tolerations added to pods that have none (0: 300 as upstream).
	DefaultNotReadyTolerationSeconds, DefaultUnreachableTolerationSeconds int64
	// APIServerAddresses are the addresses every API server advertises;
	// the default/kubernetes Endpoints and EndpointSlice list them. Empty:
	// they are not written.
	APIServerAddresses []string
	// APIServerPort is the port those addresses serve the API on (0: 6443).
	APIServerPort int32
	// EndpointUpdatesBatchPeriod and EndpointSliceUpdatesBatchPeriod delay
	// the Endpoints and EndpointSlice syncs a pod change triggers, to write
	// several changes at once (upstream's --endpoint-updates-batch-period
	// and --endpointslice-updates-batch-period; 0, the default, writes at
	// once).
	EndpointUpdatesBatchPeriod, EndpointSliceUpdatesBatchPeriod time.Duration
	// MaxEndpointsPerSlice bounds the endpoints of one EndpointSlice
	// (upstream's --max-endpoints-per-slice; 0: 100).
	MaxEndpointsPerSlice int32
	// APIServiceDiscoveryCheck asks the backend of an APIService for its
	// discovery document with the API server's front-proxy identity (the
	// apiservice-availability controller's last check); nil skips it.
	APIServiceDiscoveryCheck func(ctx context.Context, api *apiregistrationv1.APIService) error
	// ACMEDirectory is the ACME directory the certificates controller
	// orders from (a URL, letsencrypt, letsencrypt-staging, or off; empty:
	// Let's Encrypt production); ACMEEmail the account's contact;
	// ACMECABundle the path of PEM roots the directory is verified with (a
	// private ACME CA such as Pebble); ACMEChallenges the challenge types,
	// in order of preference (empty: http-01, tls-alpn-01).
	ACMEDirectory, ACMEEmail, ACMECABundle string
	ACMEChallenges                         []string
}

// Starter starts one controller: it registers its informers on
// ctx.Informers and returns; its loops run until runCtx is done.
type Starter func(runCtx context.Context, c *Context) error
