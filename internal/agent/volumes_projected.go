package agent

import (
	"context"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// noTokenRequest is logged once: the API server has no TokenRequest
// (serviceaccounts/token) for serviceAccountToken projections.
var noTokenRequest sync.Once

// projectedFiles are the files of a projected volume: its ConfigMap,
// Secret and downward API sources, each as their own volume would show
// them, with the volume's default mode.
//
// serviceAccountToken sources are skipped (no token file is written):
// Havre's API server does not issue bound tokens yet, and a pod must not
// fail to start over it (the kube-api-access-* volume every pod may get).
func (v volumeSetup) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource) ([]volumeFile, error) {
	var files []volumeFile
	for _, s := range p.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := deref(s.ConfigMap.Optional)
			data, err := v.configMapData(ctx, pod.Namespace, s.ConfigMap.Name, optional)
			if err != nil {
				return nil, err
			}
			more, err := projectKeys(data, s.ConfigMap.Items, p.DefaultMode, optional, "configmap "+s.ConfigMap.Name)
			if err != nil {
				return nil, err
			}
			files = append(files, more...)
		case s.Secret != nil:
			optional := deref(s.Secret.Optional)
			data, err := v.secretData(ctx, pod.Namespace, s.Secret.Name, optional)
			if err != nil {
				return nil, err
			}
			more, err := projectKeys(data, s.Secret.Items, p.DefaultMode, optional, "secret "+s.Secret.Name)
			if err != nil {
				return nil, err
			}
			files = append(files, more...)
		case s.DownwardAPI != nil:
			more, err := downwardAPIFiles(pod, s.DownwardAPI.Items, p.DefaultMode, v.env)
			if err != nil {
				return nil, err
			}
			files = append(files, more...)
		case s.ServiceAccountToken != nil:
			noTokenRequest.Do(func() {
				slog.Debug("projected volumes: serviceAccountToken sources are skipped (the API server has no serviceaccounts/token)",
					"pod", pod.Namespace+"/"+pod.Name, "path", s.ServiceAccountToken.Path)
			})
		case s.ClusterTrustBundle != nil:
			return nil, configErrorf("projected volume: clusterTrustBundle sources are not supported on this node")
		case s.PodCertificate != nil:
			return nil, configErrorf("projected volume: podCertificate sources are not supported on this node")
		}
	}
	return files, nil
}
