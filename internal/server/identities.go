package server

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/controller"
)

// configFor is the loopback client config of an in-process identity.
func configFor(srv *apiserver.Server, id identity) (*rest.Config, error) {
	if id.user == "" {
		return srv.LoopbackConfig(), nil
	}
	return srv.LoopbackConfigAs(id.user, id.groups...)
}

// contextFor is the controller Context of a controller running as id.
func contextFor(srv *apiserver.Server, shared *controller.Context, id identity) (*controller.Context, error) {
	cfg, err := configFor(srv, id)
	if err != nil {
		return nil, err
	}
	return shared.As(cfg)
}

// nodeIdentity is the identity of the node agent of node name, as a
// kubelet's client certificate would authenticate it (group system:nodes,
// bound to havre:node-agent by the bootstrap policy).
func nodeIdentity(name string) identity {
	return identity{user: "system:node:" + name, groups: []string{"system:nodes"}}
}

// ensureServiceAccounts creates the kube-system ServiceAccounts the
// controllers run as, as kube-controller-manager's
// --use-service-account-credentials does (their objects are what `kubectl
// get serviceaccounts -n kube-system` lists; the identities do not depend
// on them).
func ensureServiceAccounts(ctx context.Context, cs kubernetes.Interface, ids []identity) {
	seen := map[string]bool{}
	for _, id := range ids {
		name := id.serviceAccountName()
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: controllerNamespace}}
		err := retry.OnError(retry.DefaultBackoff, func(err error) bool { return !apierrors.IsAlreadyExists(err) && ctx.Err() == nil }, func() error {
			_, err := cs.CoreV1().ServiceAccounts(controllerNamespace).Create(ctx, sa, metav1.CreateOptions{})
			return err
		})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			slog.Warn("creating a controller's ServiceAccount", "serviceaccount", controllerNamespace+"/"+name, "err", err)
		}
	}
}
