package apiserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
)

// What kube-apiserver's ServiceAccount admission plugin adds to pods.
const (
	// defaultServiceAccount is the account of pods that name none.
	defaultServiceAccount = "default"
	// serviceAccountVolumePrefix starts the name of the projected token
	// volume, "kube-api-access-" and five random characters.
	serviceAccountVolumePrefix = "kube-api-access-"
	// serviceAccountMountPath is where every container sees the volume.
	serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// serviceAccountTokenExpiration is the token lifetime the volume asks
	// for: an hour and seven seconds, upstream's warn-only bound.
	serviceAccountTokenExpiration = 3607
	// rootCAConfigMap is the ConfigMap the root CA publisher keeps in every
	// namespace; the volume projects its ca.crt.
	rootCAConfigMap = "kube-root-ca.crt"
	// defaultServiceAccountAttempts bound the wait for a new namespace's
	// default account, which the service account controller creates:
	// about 10 s where upstream waits 1-2 s, so that a pod created right
	// after its namespace on a busy small machine is not refused.
	defaultServiceAccountAttempts = 50
)

func init() { registerPodAdmitter("ServiceAccount", admitServiceAccount) }

// admitServiceAccount is kube-apiserver's ServiceAccount admission plugin
// on pod create: the pod runs as "default" unless it names an account; the
// account must exist (403 otherwise); unless the pod or the account opts
// out, every container and init container mounts a projected volume with a
// token of the account, the cluster CA and the namespace; the account's
// image pull secrets become the pod's when it has none. Mirror pods are
// left alone but may not name an account.
func admitServiceAccount(s *Server, ctx context.Context, pod *corev1.Pod) error {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = defaultServiceAccount
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	sa, err := s.serviceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		name := pod.Name
		if name == "" {
			name = pod.GenerateName
		}
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, name,
			fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if automountToken(sa, pod) {
		mountServiceAccountToken(pod)
	}
	if len(pod.Spec.ImagePullSecrets) == 0 {
		for _, ref := range sa.ImagePullSecrets {
			pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: ref.Name})
		}
	}
	return nil
}

// serviceAccount reads an account. The default account of a namespace
// created a moment ago may not exist yet: it is waited for briefly (up to
// about ten seconds; upstream waits about two).
func (s *Server) serviceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	h := s.handler("", "v1", "serviceaccounts")
	if h == nil {
		return nil, fmt.Errorf("serviceaccounts are not served")
	}
	attempts := 1
	if name == defaultServiceAccount {
		attempts = defaultServiceAccountAttempts
	}
	interval := time.Duration(100+rand.IntN(100)) * time.Millisecond
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(interval):
			}
		}
		obj, err := h.objs.get(ctx, namespace, name)
		if err == nil {
			return obj.(*corev1.ServiceAccount), nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
}

// automountToken decides whether the pod gets the token volume: the pod's
// automountServiceAccountToken wins, then the account's; the default is yes.
func automountToken(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountServiceAccountToken mounts the token volume read-only at
// serviceAccountMountPath in every container and init container that has
// nothing mounted there, and adds the volume when one of them needs it.
func mountServiceAccountToken(pod *corev1.Pod) {
	volumeName := ""
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, serviceAccountVolumePrefix) {
			volumeName = v.Name
			break
		}
	}
	hasVolume := volumeName != ""
	if !hasVolume {
		volumeName = serviceAccountVolumePrefix + utilrand.String(5)
	}
	mount := corev1.VolumeMount{Name: volumeName, ReadOnly: true, MountPath: serviceAccountMountPath}
	needed := false
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			if !mountsAt(containers[i].VolumeMounts, serviceAccountMountPath) {
				containers[i].VolumeMounts = append(containers[i].VolumeMounts, mount)
				needed = true
			}
		}
	}
	if needed && !hasVolume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         volumeName,
			VolumeSource: corev1.VolumeSource{Projected: serviceAccountTokenVolume()},
		})
	}
}

func mountsAt(mounts []corev1.VolumeMount, path string) bool {
	for _, m := range mounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// serviceAccountTokenVolume is the projected volume upstream adds: the
// token, the cluster CA from kube-root-ca.crt and the pod's namespace.
func serviceAccountTokenVolume() *corev1.ProjectedVolumeSource {
	mode, expiration := corev1.ProjectedVolumeSourceDefaultMode, int64(serviceAccountTokenExpiration)
	return &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path:              "token",
				ExpirationSeconds: &expiration,
			}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{
				Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}},
			}},
		},
	}
}
