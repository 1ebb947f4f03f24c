package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/havre/havre/internal/certs/acme"
	"github.com/havre/havre/internal/controller"
)

// addACMEFlags adds `havre server`'s flags of the certificates controller.
func addACMEFlags(f *pflag.FlagSet, o *controller.Options) {
	f.StringVar(&o.ACMEDirectory, "acme-directory", "letsencrypt",
		"ACME directory Ingress certificates of public names are ordered from: a URL, letsencrypt (production), letsencrypt-staging, or off (private names such as *.test, *.local and IPs always get one from the cluster issuer)")
	f.StringVar(&o.ACMEEmail, "acme-email", "", "contact email of the ACME account")
	f.StringVar(&o.ACMECABundle, "acme-ca-bundle", "", "PEM file of the roots the ACME directory's TLS certificate is verified with (a private ACME CA such as Pebble; default: the system's)")
	f.StringSliceVar(&o.ACMEChallenges, "acme-challenges", []string{acme.HTTP01, acme.TLSALPN01}, "ACME challenge types solved, in order of preference (http-01, tls-alpn-01)")
}

// checkACMEFlags refuses an unusable --acme-directory or --acme-challenges.
func checkACMEFlags(o *controller.Options) error {
	if _, err := acme.DirectoryURL(o.ACMEDirectory); err != nil {
		return err
	}
	for _, c := range o.ACMEChallenges {
		if c != acme.HTTP01 && c != acme.TLSALPN01 {
			return fmt.Errorf("--acme-challenges: %q is not one of http-01, tls-alpn-01", c)
		}
	}
	return nil
}
