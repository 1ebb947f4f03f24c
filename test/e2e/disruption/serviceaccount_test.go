package disruption_test

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

const (
	rootCAConfigMap = "kube-root-ca.crt"
	tokenMountPath  = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// TestNamespaceDefaults: every namespace gets a default ServiceAccount and
// the kube-root-ca.crt ConfigMap, and gets them back when they are deleted
// or (the ConfigMap) edited.
func TestNamespaceDefaults(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	ca := bytes.TrimSpace(s.RESTConfig().CAData)
	if len(ca) == 0 {
		t.Fatal("the kubeconfig has no CA data")
	}

	waitAccount := func(ns string) {
		t.Helper()
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx(t), "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		}, "no default ServiceAccount in namespace %s", ns)
	}
	waitCA := func(ns string) {
		t.Helper()
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), rootCAConfigMap, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			return strings.TrimSpace(cm.Data["ca.crt"]) == string(ca) && cm.Annotations["kubernetes.io/description"] != "", nil
		}, "no current %s in namespace %s", rootCAConfigMap, ns)
	}

	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		waitAccount(ns)
		waitCA(ns)
	}
	ns := newNamespace(t, cs, "defaults")
	waitAccount(ns)
	waitCA(ns)

	if err := cs.CoreV1().ServiceAccounts(ns).Delete(ctx(t), "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAccount(ns)

	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx(t), rootCAConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCA(ns)

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), rootCAConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["ca.crt"] = "not a CA"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx(t), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCA(ns)

	out := s.MustKubectl(t, "get", "serviceaccounts", "-n", ns)
	if !strings.Contains(out, "default") {
		t.Errorf("kubectl get serviceaccounts:\n%s", out)
	}
}

// TestPodServiceAccount: the ServiceAccount admission of pods.
func TestPodServiceAccount(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	// A pod created right after its namespace waits for the namespace's
	// default account instead of failing.
	ns := newNamespace(t, cs, "sa")
	pod, err := cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "plain"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: image}},
			Containers: []corev1.Container{{Name: "a", Image: image}, {Name: "b", Image: image,
				VolumeMounts: []corev1.VolumeMount{{Name: "own", MountPath: tokenMountPath}}}},
			Volumes: []corev1.Volume{{Name: "own", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a pod without serviceAccountName: %v", err)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("serviceAccountName %q, serviceAccount %q, want default", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount)
	}
	vol := tokenVolume(pod)
	if vol == nil {
		t.Fatalf("no kube-api-access- volume in %+v", pod.Spec.Volumes)
	}
	if len(vol.Name) != len("kube-api-access-")+5 {
		t.Errorf("volume name %q", vol.Name)
	}
	p := vol.Projected
	if p == nil || p.DefaultMode == nil || *p.DefaultMode != 420 || len(p.Sources) != 3 ||
		p.Sources[0].ServiceAccountToken == nil || p.Sources[0].ServiceAccountToken.Path != "token" ||
		ptr.Deref(p.Sources[0].ServiceAccountToken.ExpirationSeconds, 0) != 3607 ||
		p.Sources[1].ConfigMap == nil || p.Sources[1].ConfigMap.Name != rootCAConfigMap ||
		len(p.Sources[1].ConfigMap.Items) != 1 || p.Sources[1].ConfigMap.Items[0].Key != "ca.crt" || p.Sources[1].ConfigMap.Items[0].Path != "ca.crt" ||
		p.Sources[2].DownwardAPI == nil || len(p.Sources[2].DownwardAPI.Items) != 1 ||
		p.Sources[2].DownwardAPI.Items[0].Path != "namespace" || p.Sources[2].DownwardAPI.Items[0].FieldRef == nil ||
		p.Sources[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("projected volume %+v", p)
	}
	mounted := func(c corev1.Container) bool {
		for _, m := range c.VolumeMounts {
			if m.Name == vol.Name {
				return m.MountPath == tokenMountPath && m.ReadOnly
			}
		}
		return false
	}
	if !mounted(pod.Spec.InitContainers[0]) || !mounted(pod.Spec.Containers[0]) {
		t.Errorf("token volume not mounted read-only at %s: init %+v, a %+v", tokenMountPath,
			pod.Spec.InitContainers[0].VolumeMounts, pod.Spec.Containers[0].VolumeMounts)
	}
	if mounted(pod.Spec.Containers[1]) || len(pod.Spec.Containers[1].VolumeMounts) != 1 {
		t.Errorf("container b mounts its own volume at %s, got %+v", tokenMountPath, pod.Spec.Containers[1].VolumeMounts)
	}

	t.Run("opt out", func(t *testing.T) {
		pod, err := cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "no-token"},
			Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: "a", Image: image}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tokenVolume(pod) != nil || len(pod.Spec.Containers[0].VolumeMounts) != 0 || pod.Spec.ServiceAccountName != "default" {
			t.Errorf("automountServiceAccountToken=false: volumes %+v, mounts %+v, account %q",
				pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts, pod.Spec.ServiceAccountName)
		}

		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx(t), &corev1.ServiceAccount{
			ObjectMeta:                   metav1.ObjectMeta{Name: "quiet"},
			AutomountServiceAccountToken: ptr.To(false),
			ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod, err = cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "quiet"},
			Spec:       corev1.PodSpec{ServiceAccountName: "quiet", Containers: []corev1.Container{{Name: "a", Image: image}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tokenVolume(pod) != nil {
			t.Errorf("account with automountServiceAccountToken=false: volumes %+v", pod.Spec.Volumes)
		}
		if len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "registry" {
			t.Errorf("imagePullSecrets %+v, want the account's", pod.Spec.ImagePullSecrets)
		}
	})

	t.Run("missing account", func(t *testing.T) {
		_, err := cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "lost"},
			Spec:       corev1.PodSpec{ServiceAccountName: "nobody", Containers: []corev1.Container{{Name: "a", Image: image}}},
		}, metav1.CreateOptions{})
		want := `pods "lost" is forbidden: error looking up service account ` + ns + `/nobody: serviceaccount "nobody" not found`
		if !apierrors.IsForbidden(err) || err.Error() != want {
			t.Fatalf("pod with a missing account: %v, want 403 %q", err, want)
		}
		_, errOut, kerr := s.KubectlStdin(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"lost"},
			"spec":{"serviceAccountName":"nobody","containers":[{"name":"a","image":"`+image+`"}]}}`, "create", "-n", ns, "-f", "-")
		if kerr == nil || !strings.Contains(errOut, `Error from server (Forbidden): error when creating "STDIN": `+want) {
			t.Errorf("kubectl create: %v\n%s", kerr, errOut)
		}
	})
}

func tokenVolume(pod *corev1.Pod) *corev1.Volume {
	for i, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}
