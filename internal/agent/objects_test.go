package agent

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPodObjectRefs(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: corev1.PodSpec{
		Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm1"}}}},
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s1"}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm2"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s2"}}},
			}}}},
		},
		InitContainers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s3"}}}}}},
		Containers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm3"}, Key: "k"}}}}}},
	}}
	refs := podObjectRefs(pod)
	for _, k := range []objectKey{{false, "ns", "cm1"}, {false, "ns", "cm2"}, {false, "ns", "cm3"}, {true, "ns", "s1"}, {true, "ns", "s2"}, {true, "ns", "s3"}} {
		if !refs[k] {
			t.Errorf("missing %+v", k)
		}
	}
	if len(refs) != 6 {
		t.Errorf("refs %v", refs)
	}
}

func TestObjectCacheWatchesWhatPodsUse(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"k": "v1"}}
	cs := fake.NewClientset(cm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woken := make(chan types.UID, 10)
	o := newObjectCache(ctx, cs, func(uid types.UID) { woken <- uid })
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "later"}}},
	}}}
	o.track(pod)
	waitWoken := func(what string) {
		t.Helper()
		select {
		case uid := <-woken:
			if uid != "u1" {
				t.Fatalf("%s: woke %s", what, uid)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the pod was not woken", what)
		}
	}
	waitWoken("initial list")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, ok := o.lookup(objectKey{namespace: "ns", name: "cfg"}); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := o.ConfigMap(ctx, "ns", "cfg")
	if err != nil || got.Data["k"] != "v1" {
		t.Fatalf("ConfigMap: %v %v", got, err)
	}

	// An update wakes the pod and is served.
	cm = cm.DeepCopy()
	cm.Data["k"] = "v2"
	if _, err := cs.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitWoken("update")
	if got, _ := o.ConfigMap(ctx, "ns", "cfg"); got.Data["k"] != "v2" {
		t.Errorf("after the update: %v", got.Data)
	}
	// A Secret the pod waits for wakes it when created.
	for len(woken) > 0 {
		<-woken
	}
	if _, err := cs.CoreV1().Secrets("ns").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitWoken("creation")

	// Once the pod is gone, the watches go and reads go to the API.
	o.untrack("u1")
	if len(o.watches) != 0 {
		t.Errorf("watches left: %v", o.watches)
	}
	if _, err := o.ConfigMap(ctx, "ns", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("missing ConfigMap: %v", err)
	}
}
