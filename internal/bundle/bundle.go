// Package bundle installs the upstream object bundles Havre embeds
// unchanged and installs at every start (the snapshot API's and Gateway
// API's CustomResourceDefinitions, Gateway API's admission policy): an
// object is created when missing, and updated only when Havre installed
// it from an older bundle version (named by an annotation); an object
// without the annotation is someone else's and is left as it is.
package bundle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

// Newer reports whether an object installed from bundle version installed
// is to be replaced by ours: only when both are versions and ours is the
// greater.
func Newer(ours, installed string) bool {
	if ours == "" || installed == "" {
		return false
	}
	o, err := version.ParseSemantic(ours)
	if err != nil {
		return false
	}
	i, err := version.ParseSemantic(installed)
	if err != nil {
		return false
	}
	return i.LessThan(o)
}

// Client is how Install reaches one object: Update writes ours over the
// installed object old (its spec and our annotations on old's metadata).
type Client[T metav1.Object] struct {
	Create func(T) error
	Get    func() (T, error)
	Update func(old T) error
}

// Install creates obj, or updates the installed object when its
// annotation names an older bundle version than ours (obj's own
// annotation). The installed object is read first: a create of an
// object that exists would be decoded, defaulted and validated (for a
// definition, its CEL rules compiled) only to be refused, at every start.
// The update is read, compared and written again on a conflict: the
// object's controllers may write its status meanwhile.
func Install[T metav1.Object](ctx context.Context, kind, annotation string, obj T, c Client[T]) error {
	ours := obj.GetAnnotations()[annotation]
	from, updated := "", false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		old, err := c.Get()
		if apierrors.IsNotFound(err) {
			switch err := c.Create(obj); {
			case err == nil:
				slog.Info("installed an object of a bundle", "kind", kind, "name", obj.GetName(), "version", ours)
				return nil
			case apierrors.IsAlreadyExists(err):
				// Created meanwhile: read it again.
				return apierrors.NewConflict(schema.GroupResource{}, obj.GetName(), err)
			default:
				return fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
			}
		}
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
		}
		from = old.GetAnnotations()[annotation]
		if !Newer(ours, from) {
			return nil
		}
		if err := c.Update(old); err != nil {
			return err
		}
		updated = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("installing %s %s %s: %w", kind, obj.GetName(), ours, err)
	}
	if updated {
		slog.Info("updated an object of a bundle", "kind", kind, "name", obj.GetName(), "from", from, "to", ours)
	}
	return nil
}

// MergeAnnotations sets annotations on meta (the bundle version among
// them), keeping the others.
func MergeAnnotations(meta *metav1.ObjectMeta, annotations map[string]string) {
	for k, v := range annotations {
		metav1.SetMetaDataAnnotation(meta, k, v)
	}
}

// CreateOnceServed calls create every 250 ms until it succeeds or finds the
// object already there, for as long as ctx lasts: the object's definition,
// just installed, may not be served yet (the server's crd controller
// establishes it). A wait.Backoff with a Cap would stop retrying once the
// cap is reached; under load definitions took longer than that and the
// object was never created. Each attempt is bounded, so a request to a
// resource being established does not hold the retries up.
func CreateOnceServed(ctx context.Context, what string, create func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		switch err := create(attempt); {
		case err == nil:
			slog.Info("created " + what)
			return true, nil
		case apierrors.IsAlreadyExists(err):
			return true, nil
		default:
			// Not served yet, most likely.
			last = err
			return false, nil
		}
	})
	if err != nil {
		return fmt.Errorf("creating %s: %w (last error: %v)", what, err, last)
	}
	return nil
}

// InstallDefinitions installs each CustomResourceDefinition with Install:
// our spec and annotations over an installed one of an older bundle
// version (annotation).
func InstallDefinitions(ctx context.Context, client apiextensionsclient.Interface, annotation string, crds []*apiextensionsv1.CustomResourceDefinition) error {
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		err := Install(ctx, "CustomResourceDefinition", annotation, crd, Client[*apiextensionsv1.CustomResourceDefinition]{
			Create: func(o *apiextensionsv1.CustomResourceDefinition) error {
				_, err := api.Create(ctx, o, metav1.CreateOptions{})
				return err
			},
			Get: func() (*apiextensionsv1.CustomResourceDefinition, error) {
				return api.Get(ctx, crd.Name, metav1.GetOptions{})
			},
			Update: func(old *apiextensionsv1.CustomResourceDefinition) error {
				updated := old.DeepCopy()
				updated.Spec = crd.Spec
				MergeAnnotations(&updated.ObjectMeta, crd.Annotations)
				_, err := api.Update(ctx, updated, metav1.UpdateOptions{})
				return err
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}
