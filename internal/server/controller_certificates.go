package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/certs/acme"
	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/certificates"
	"github.com/havre/havre/internal/controller/crd"
)

// startCertificates starts the controller issuing Ingresses' certificates
// (ACME per --acme-directory for public names, the cluster issuer for
// private ones), and Gateways' HTTPS listeners once Gateway API is served.
func startCertificates(ctx context.Context, c *controller.Context) error {
	o, err := acmeOrderer(c)
	if err != nil {
		return err
	}
	cc, err := certificates.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "certificates-controller"), certificates.Options{Orderer: o})
	if err != nil {
		return err
	}
	// Gateways' listeners too, once Gateway API's CRDs are served.
	var once sync.Once
	err = crd.Watch(ctx, c.Config, func(served []crd.Resource) {
		for _, r := range served {
			if r.GroupVersionResource != certificates.GatewayResource {
				continue
			}
			once.Do(func() {
				inf := dynamicinformer.NewFilteredDynamicInformer(c.Dynamic, certificates.GatewayResource, "", 0,
					cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil).Informer()
				if err := cc.AddGatewayInformer(inf); err != nil {
					slog.Warn("certificates: watching Gateways", "err", err)
					return
				}
				go inf.Run(ctx.Done())
			})
		}
	})
	if err != nil {
		return err
	}
	go cc.Run(ctx, 4)
	return nil
}

// acmeOrderer is the ACME orderer of the --acme-* flags; nil when ACME is off.
func acmeOrderer(c *controller.Context) (*acme.Orderer, error) {
	dir, err := acme.DirectoryURL(c.Options.ACMEDirectory)
	if err != nil || dir == "" {
		return nil, err
	}
	var bundle []byte
	if c.Options.ACMECABundle != "" {
		if bundle, err = os.ReadFile(c.Options.ACMECABundle); err != nil {
			return nil, fmt.Errorf("--acme-ca-bundle: %w", err)
		}
	}
	return acme.New(acme.Config{Directory: dir, Email: c.Options.ACMEEmail, CABundle: bundle,
		Challenges: c.Options.ACMEChallenges, Client: c.Client})
}
