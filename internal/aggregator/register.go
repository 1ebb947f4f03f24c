package aggregator

import (
	"context"
	"encoding/json"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/havre/havre/internal/controller/crd"
	"github.com/havre/havre/internal/pki"
)

// AuthenticationConfigMap is kube-system's ConfigMap that servers built on
// k8s.io/apiserver read to authenticate clients and the front proxy.
const AuthenticationConfigMap = "extension-apiserver-authentication"

// The label upstream's autoregister puts on the APIServices it manages:
// "onstart" for the built-in group versions, "true" for those of
// CustomResourceDefinitions (crdregistration).
const (
	AutoManagedLabel = "kube-aggregator.kubernetes.io/automanaged"
	autoOnStart      = "onstart"
	autoSync         = "true"
)

// publishAuthentication writes the ConfigMap as kube-apiserver's
// ClusterAuthenticationTrustController does.
func (a *Aggregator) publishAuthentication(ctx context.Context, client kubernetes.Interface) error {
	list := func(v ...string) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	data := map[string]string{
		"client-ca-file":                     string(a.clusterCAPEM),
		"requestheader-client-ca-file":       string(a.frontProxy.CAPEM),
		"requestheader-allowed-names":        list(pki.FrontProxyClientName),
		"requestheader-username-headers":     list("X-Remote-User"),
		"requestheader-uid-headers":          list("X-Remote-Uid"),
		"requestheader-group-headers":        list("X-Remote-Group"),
		"requestheader-extra-headers-prefix": list("X-Remote-Extra-"),
	}
	cms := client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cur, err := cms.Get(ctx, AuthenticationConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: AuthenticationConfigMap, Namespace: metav1.NamespaceSystem}, Data: data}, metav1.CreateOptions{})
		return err
	}
	if err != nil || apiequality.Semantic.DeepEqual(cur.Data, data) {
		return err
	}
	cur.Data = data
	_, err = cms.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// priority is a built-in group version's place in discovery, from
// kube-apiserver's apiVersionPriorities.
type priority struct{ group, version int32 }

var priorities = map[schema.GroupVersion]priority{
	{Group: "", Version: "v1"}:                             {18000, 1},
	{Group: "apiregistration.k8s.io", Version: "v1"}:       {18000, 15},
	{Group: "apps", Version: "v1"}:                         {17800, 15},
	{Group: "events.k8s.io", Version: "v1"}:                {17750, 15},
	{Group: "authentication.k8s.io", Version: "v1"}:        {17700, 15},
	{Group: "authorization.k8s.io", Version: "v1"}:         {17600, 15},
	{Group: "autoscaling", Version: "v2"}:                  {17500, 30},
	{Group: "autoscaling", Version: "v1"}:                  {17500, 15},
	{Group: "batch", Version: "v1"}:                        {17400, 15},
	{Group: "certificates.k8s.io", Version: "v1"}:          {17300, 15},
	{Group: "networking.k8s.io", Version: "v1"}:            {17200, 15},
	{Group: "policy", Version: "v1"}:                       {17100, 15},
	{Group: "rbac.authorization.k8s.io", Version: "v1"}:    {17000, 15},
	{Group: "storage.k8s.io", Version: "v1"}:               {16800, 15},
	{Group: "apiextensions.k8s.io", Version: "v1"}:         {16700, 15},
	{Group: "admissionregistration.k8s.io", Version: "v1"}: {16700, 15},
	{Group: "scheduling.k8s.io", Version: "v1"}:            {16600, 15},
	{Group: "coordination.k8s.io", Version: "v1"}:          {16500, 15},
	{Group: "node.k8s.io", Version: "v1"}:                  {16300, 15},
	{Group: "discovery.k8s.io", Version: "v1"}:             {16200, 15},
	{Group: "flowcontrol.apiserver.k8s.io", Version: "v1"}: {16100, 21},
	{Group: "resource.k8s.io", Version: "v1"}:              {15900, 15},
}

// localAPIService is the APIService of a group version the server serves.
func localAPIService(gv schema.GroupVersion, p priority, managed string) *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: gv.Version + "." + gv.Group, Labels: map[string]string{AutoManagedLabel: managed}},
		Spec: apiregistrationv1.APIServiceSpec{Group: gv.Group, Version: gv.Version,
			GroupPriorityMinimum: p.group, VersionPriority: p.version},
	}
}

// registerBuiltin creates or corrects the local APIServices of the
// built-in group versions, and removes those of group versions no longer
// served, as upstream's autoregister controller.
func (a *Aggregator) registerBuiltin(ctx context.Context, client aggregatorclient.Interface) error {
	want := map[string]*apiregistrationv1.APIService{}
	for _, gv := range a.builtin {
		p, ok := priorities[gv]
		if !ok {
			p = priority{1000, 15}
		}
		svc := localAPIService(gv, p, autoOnStart)
		want[svc.Name] = svc
	}
	return a.sync(ctx, client, autoOnStart, want)
}

// sync makes the APIServices labelled managed those of want.
func (a *Aggregator) sync(ctx context.Context, client aggregatorclient.Interface, managed string, want map[string]*apiregistrationv1.APIService) error {
	apis := client.ApiregistrationV1().APIServices()
	existing, err := apis.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	have := map[string]*apiregistrationv1.APIService{}
	for i := range existing.Items {
		have[existing.Items[i].Name] = &existing.Items[i]
	}
	for _, name := range sortedNames(want) {
		w := want[name]
		cur, ok := have[name]
		switch {
		case !ok:
			if _, err := apis.Create(ctx, w, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
		case cur.Labels[AutoManagedLabel] == "":
			// Created by hand: upstream leaves it alone.
		case !apiequality.Semantic.DeepEqual(cur.Spec, w.Spec) || cur.Labels[AutoManagedLabel] != managed:
			cur.Spec = w.Spec
			cur.Labels[AutoManagedLabel] = managed
			if _, err := apis.Update(ctx, cur, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
				return err
			}
		}
	}
	for name, cur := range have {
		if _, ok := want[name]; !ok && cur.Labels[AutoManagedLabel] == managed {
			if err := apis.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// registerCustomResources keeps a local APIService for every group version
// of an established CustomResourceDefinition, as upstream's crdregistration
// controller (group priority 1000, version priority 100).
func (a *Aggregator) registerCustomResources(ctx context.Context, loopback *rest.Config, client aggregatorclient.Interface) {
	builtin := map[schema.GroupVersion]bool{}
	for _, gv := range a.builtin {
		builtin[gv] = true
	}
	err := crd.Watch(ctx, loopback, func(served []crd.Resource) {
		want := map[string]*apiregistrationv1.APIService{}
		for _, r := range served {
			gv := r.GroupVersion()
			if builtin[gv] {
				continue
			}
			svc := localAPIService(gv, priority{1000, 100}, autoSync)
			want[svc.Name] = svc
		}
		if err := a.sync(ctx, client, autoSync, want); err != nil && ctx.Err() == nil {
			slog.Warn("aggregator: registering custom resources' APIServices", "err", err)
		}
	})
	if err != nil && ctx.Err() == nil {
		slog.Warn("aggregator: watching CustomResourceDefinitions", "err", err)
	}
}
