// Package gateway is Havre's Gateway API status controller: the one
// writer (whatever the number of proxy nodes) of the status of
// GatewayClasses of controllerName havre.io/gateway-controller, of their
// Gateways (Accepted, Programmed, listeners' conditions and attachedRoutes,
// addresses: the InternalIPs of the ready nodes running the ingress proxy)
// and of the parents' entries of HTTPRoutes and GRPCRoutes attached to
// them (Accepted, ResolvedRefs with upstream's reasons). What it writes is
// computed by internal/network/gateway's Resolve, the function the proxies
// serve from, so status and traffic agree.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/havre/havre/internal/controller"
	gwnet "github.com/havre/havre/internal/network/gateway"
	"github.com/havre/havre/internal/network/gateway/gatewayapi"
	"github.com/havre/havre/internal/network/ingress/routes"
)

// Name is the controller's name (--controllers) and its ServiceAccount's.
const Name = "gateway-controller"

// NodeLabel is the label node agents put on their Node: "true" when the
// node runs the ingress proxy (the proxy's routes.NodeLabel).
const NodeLabel = "havre.io/ingress-proxy"

// key is the queue's only key: every change recomputes every status (the
// attachment of a route depends on its Gateway's listeners, and the
// reverse), as the proxies do.
const key = "all"

// Controller writes Gateway API statuses.
type Controller struct {
	client  gatewayclient.Interface
	ext     apiextensionsclient.Interface
	listers *gwnet.Listers
	nodes   corelisters.NodeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller on the factories (start them afterwards): ext
// reads the installed definitions' bundle version (SupportedVersion).
func New(client gatewayclient.Interface, ext apiextensionsclient.Interface, gf gatewayinformers.SharedInformerFactory, kf informers.SharedInformerFactory) *Controller {
	c := &Controller{client: client, ext: ext,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: Name})}
	enqueue := func() { c.queue.Add(key) }
	c.listers = gwnet.NewListers(gf, kf, enqueue)
	nodes := kf.Core().V1().Nodes()
	c.nodes = nodes.Lister()
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { enqueue() },
		UpdateFunc: func(old, cur any) {
			if !reflect.DeepEqual(addressOf(old.(*corev1.Node)), addressOf(cur.(*corev1.Node))) {
				enqueue()
			}
		},
		DeleteFunc: func(any) { enqueue() },
	})
	c.synced = append(slices.Clone(c.listers.Synced), nodes.Informer().HasSynced)
	return c
}

// Run syncs until ctx is done.
func (c *Controller) Run(ctx context.Context) {
	c.queue.Add(key)
	controller.RunWorkers(ctx, c.queue, c.synced, 1, c.sync, Name+": sync failed", "key")
}

// addressOf is a node's InternalIP when it serves ingress and is ready.
func addressOf(n *corev1.Node) string {
	if n.Labels[NodeLabel] != "true" || n.DeletionTimestamp != nil {
		return ""
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return ""
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				return ip.Unmap().String()
			}
		}
	}
	return ""
}

func (c *Controller) addresses() ([]gatewayv1.GatewayStatusAddress, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, n := range nodes {
		if ip := addressOf(n); ip != "" && !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	slices.Sort(ips)
	out := []gatewayv1.GatewayStatusAddress{}
	for _, ip := range ips {
		out = append(out, gatewayv1.GatewayStatusAddress{Type: new(gatewayv1.IPAddressType), Value: ip})
	}
	return out, nil
}

// supportedVersion reads the bundle version of the installed
// GatewayClass definition: Havre supports its own bundle's minor version.
func (c *Controller) supportedVersion(ctx context.Context) (bool, string) {
	crd, err := c.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "gatewayclasses."+gwnet.Group, metav1.GetOptions{})
	if err != nil {
		return true, "Gateway API " + gatewayapi.BundleVersion
	}
	installed := crd.Annotations["gateway.networking.k8s.io/bundle-version"]
	i, err1 := version.ParseSemantic(installed)
	o, err2 := version.ParseSemantic(gatewayapi.BundleVersion)
	if err1 != nil || err2 != nil || i.Major() != o.Major() || i.Minor() != o.Minor() {
		return false, fmt.Sprintf("the installed Gateway API definitions are of bundle version %q; this controller supports v%d.%d", installed, o.Major(), o.Minor())
	}
	return true, "Gateway API " + installed
}

func setConditions(existing []metav1.Condition, conds []gwnet.Condition, generation int64) []metav1.Condition {
	out := slices.Clone(existing)
	for _, c := range conds {
		apimeta.SetStatusCondition(&out, metav1.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: generation})
	}
	return out
}

func (c *Controller) sync(ctx context.Context, _ string) error {
	snap, err := c.listers.Snapshot(gwnet.HTTPPort, gwnet.HTTPSPort)
	if err != nil {
		return err
	}
	addresses, err := c.addresses()
	if err != nil {
		return err
	}
	res := gwnet.Resolve(snap)
	var errs []error
	supported, versionMsg := c.supportedVersion(ctx)
	for _, gc := range snap.Classes {
		if !gwnet.Ours(gc) {
			continue
		}
		accepted := gwnet.Condition{Type: string(gatewayv1.GatewayClassConditionStatusAccepted), Status: metav1.ConditionTrue, Reason: string(gatewayv1.GatewayClassReasonAccepted), Message: "Accepted by " + routes.GatewayController}
		sv := gwnet.Condition{Type: string(gatewayv1.GatewayClassConditionStatusSupportedVersion), Status: metav1.ConditionTrue, Reason: string(gatewayv1.GatewayClassReasonSupportedVersion), Message: versionMsg}
		if !supported {
			accepted = gwnet.Condition{Type: accepted.Type, Status: metav1.ConditionFalse, Reason: string(gatewayv1.GatewayClassReasonUnsupportedVersion), Message: versionMsg}
			sv = gwnet.Condition{Type: sv.Type, Status: metav1.ConditionFalse, Reason: string(gatewayv1.GatewayClassReasonUnsupportedVersion), Message: versionMsg}
		}
		if gc.Spec.ParametersRef != nil {
			accepted = gwnet.Condition{Type: accepted.Type, Status: metav1.ConditionFalse, Reason: string(gatewayv1.GatewayClassReasonInvalidParameters), Message: "parametersRef is not supported"}
		}
		updated := gc.DeepCopy()
		updated.Status.Conditions = setConditions(gc.Status.Conditions, []gwnet.Condition{accepted, sv}, gc.Generation)
		updated.Status.SupportedFeatures = nil
		for _, f := range gwnet.SupportedFeatures {
			updated.Status.SupportedFeatures = append(updated.Status.SupportedFeatures, gatewayv1.SupportedFeature{Name: f})
		}
		if !reflect.DeepEqual(updated.Status, gc.Status) {
			if _, err := c.client.GatewayV1().GatewayClasses().UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("GatewayClass %s: %w", gc.Name, err))
			}
		}
	}
	for _, g := range snap.Gateways {
		st, ok := res.Gateways[types.NamespacedName{Namespace: g.Namespace, Name: g.Name}]
		if !ok {
			continue
		}
		updated := g.DeepCopy()
		conds := slices.Clone(st.Conditions)
		if len(addresses) == 0 {
			for i, cd := range conds {
				if cd.Type == string(gatewayv1.GatewayConditionProgrammed) && cd.Status == metav1.ConditionTrue {
					conds[i] = gwnet.Condition{Type: cd.Type, Status: metav1.ConditionFalse, Reason: string(gatewayv1.GatewayReasonAddressNotAssigned),
						Message: "no ready node runs the ingress proxy"}
				}
			}
		}
		updated.Status.Conditions = setConditions(g.Status.Conditions, conds, g.Generation)
		updated.Status.Addresses = addresses
		var listeners []gatewayv1.ListenerStatus
		for _, ls := range st.Listeners {
			var old []metav1.Condition
			for _, o := range g.Status.Listeners {
				if o.Name == ls.Name {
					old = o.Conditions
				}
			}
			listeners = append(listeners, gatewayv1.ListenerStatus{Name: ls.Name, SupportedKinds: ls.SupportedKinds, AttachedRoutes: ls.AttachedRoutes,
				Conditions: setConditions(old, ls.Conditions, g.Generation)})
		}
		updated.Status.Listeners = listeners
		if !reflect.DeepEqual(updated.Status, g.Status) {
			if _, err := c.client.GatewayV1().Gateways(g.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("Gateway %s/%s: %w", g.Namespace, g.Name, err))
			}
		}
	}
	for _, r := range snap.HTTPRoutes {
		errs = append(errs, c.writeRouteStatus(res, gwnet.KindHTTPRoute, &r.ObjectMeta, r.Status.RouteStatus, func(status gatewayv1.RouteStatus) error {
			updated := r.DeepCopy()
			updated.Status.RouteStatus = status
			_, err := c.client.GatewayV1().HTTPRoutes(r.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
			return err
		}))
	}
	for _, r := range snap.GRPCRoutes {
		errs = append(errs, c.writeRouteStatus(res, gwnet.KindGRPCRoute, &r.ObjectMeta, r.Status.RouteStatus, func(status gatewayv1.RouteStatus) error {
			updated := r.DeepCopy()
			updated.Status.RouteStatus = status
			_, err := c.client.GatewayV1().GRPCRoutes(r.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
			return err
		}))
	}
	return errors.Join(errs...)
}

// writeRouteStatus writes a route's status.parents from the resolution
// when they changed; a route deleted meanwhile is no error.
func (c *Controller) writeRouteStatus(res *gwnet.Result, kind string, m *metav1.ObjectMeta, old gatewayv1.RouteStatus, write func(gatewayv1.RouteStatus) error) error {
	status := routeStatus(old, res.Routes[gwnet.RouteKey{Kind: kind, Namespace: m.Namespace, Name: m.Name}], m.Generation)
	if reflect.DeepEqual(status, old) {
		return nil
	}
	if err := write(status); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s: %w", kind, m.Namespace, m.Name, err)
	}
	return nil
}

// routeStatus replaces this controller's entries of a route's
// status.parents with parents, keeping other controllers' entries.
func routeStatus(old gatewayv1.RouteStatus, parents []*gwnet.ParentStatus, generation int64) gatewayv1.RouteStatus {
	out := gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{}}
	for _, p := range old.Parents {
		if string(p.ControllerName) != routes.GatewayController {
			out.Parents = append(out.Parents, p)
		}
	}
	for _, p := range parents {
		var existing []metav1.Condition
		for _, o := range old.Parents {
			if string(o.ControllerName) == routes.GatewayController && reflect.DeepEqual(o.ParentRef, p.Ref) {
				existing = o.Conditions
			}
		}
		out.Parents = append(out.Parents, gatewayv1.RouteParentStatus{ParentRef: p.Ref, ControllerName: routes.GatewayController,
			Conditions: setConditions(existing, p.Conditions, generation)})
	}
	if len(out.Parents) == 0 && old.Parents == nil {
		out.Parents = nil
	}
	return out
}
