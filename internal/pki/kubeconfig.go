package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigName names the cluster, user and context of a kubeconfig
// written by WriteKubeconfig.
const KubeconfigName = "havre"

// WriteKubeconfig atomically writes, with mode 0600, a kubeconfig whose
// cluster, user and current context are all named "havre", with the server
// URL, the CA and the client certificate and key embedded. Missing parent
// directories are created 0700.
func WriteKubeconfig(path, serverURL string, caPEM, certPEM, keyPEM []byte) error {
	if path == "" {
		return errors.New("pki: empty kubeconfig path")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[KubeconfigName] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: caPEM,
	}
	cfg.AuthInfos[KubeconfigName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: certPEM,
		ClientKeyData:         keyPEM,
	}
	cfg.Contexts[KubeconfigName] = &clientcmdapi.Context{
		Cluster:  KubeconfigName,
		AuthInfo: KubeconfigName,
	}
	cfg.CurrentContext = KubeconfigName
	if err := clientcmd.Validate(*cfg); err != nil {
		return fmt.Errorf("pki: kubeconfig: %w", err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("pki: kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return fmt.Errorf("pki: kubeconfig: %w", err)
	}
	if err := WriteFileAtomic(path, data, keyPerm); err != nil {
		return fmt.Errorf("pki: kubeconfig: %w", err)
	}
	return nil
}
