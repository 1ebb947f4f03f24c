package core

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestConfigMap(t *testing.T) {
	s := ConfigMapStrategy{}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
		Data: map[string]string{"app.properties": "a=b", ".env": "X=1"}, BinaryData: map[string][]byte{"logo.png": {1, 2}}}
	checkErrors(t, s.Validate(ctx, cm))

	bad := cm.DeepCopy()
	bad.Data["bad/key"] = ""
	bad.Data["logo.png"] = ""
	checkErrors(t, s.Validate(ctx, bad), want{"data[bad/key]", field.ErrorTypeInvalid},
		want{"data[logo.png]", field.ErrorTypeInvalid}, want{"binaryData[logo.png]", field.ErrorTypeInvalid})

	big := cm.DeepCopy()
	big.Data["big"] = strings.Repeat("x", MaxDataSize)
	checkErrors(t, s.Validate(ctx, big), want{"[]", field.ErrorTypeTooLong}) // upstream reports the whole object as "[]"

	// An immutable configmap cannot change, nor become mutable.
	frozen := cm.DeepCopy()
	frozen.Immutable = new(true)
	upd := frozen.DeepCopy()
	upd.Data["app.properties"] = "a=c"
	checkErrors(t, s.ValidateUpdate(ctx, upd, frozen), want{"data", field.ErrorTypeForbidden})
	upd = frozen.DeepCopy()
	upd.Immutable = nil
	checkErrors(t, s.ValidateUpdate(ctx, upd, frozen), want{"immutable", field.ErrorTypeForbidden})
	upd = frozen.DeepCopy()
	upd.Labels = map[string]string{"a": "b"}
	checkErrors(t, s.ValidateUpdate(ctx, upd, frozen))
}

func TestSecret(t *testing.T) {
	s := SecretStrategy{}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: []byte("cert")},
		StringData: map[string]string{corev1.TLSPrivateKeyKey: "key"}}
	s.Default(sec)
	if string(sec.Data[corev1.TLSPrivateKeyKey]) != "key" || sec.StringData != nil {
		t.Errorf("stringData not merged: %+v", sec)
	}
	checkErrors(t, s.Validate(ctx, sec))

	opaque := &corev1.Secret{Data: map[string][]byte{"password": []byte("x")}}
	s.Default(opaque)
	if opaque.Type != corev1.SecretTypeOpaque {
		t.Errorf("type = %q", opaque.Type)
	}

	for _, tc := range []struct {
		name string
		sec  corev1.Secret
		want []want
	}{
		{"tls without key", corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: nil}},
			[]want{{"data[tls.key]", field.ErrorTypeRequired}}},
		{"dockerconfigjson missing", corev1.Secret{Type: corev1.SecretTypeDockerConfigJson},
			[]want{{"data[.dockerconfigjson]", field.ErrorTypeRequired}}},
		{"dockerconfigjson not JSON", corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{")}},
			[]want{{"data[.dockerconfigjson]", field.ErrorTypeInvalid}}},
		{"dockerconfigjson", corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}, nil},
		{"basic auth empty", corev1.Secret{Type: corev1.SecretTypeBasicAuth},
			[]want{{"data[username]", field.ErrorTypeRequired}, {"data[password]", field.ErrorTypeRequired}}},
		{"ssh without key", corev1.Secret{Type: corev1.SecretTypeSSHAuth}, []want{{"data[ssh-privatekey]", field.ErrorTypeRequired}}},
		{"service account token", corev1.Secret{Type: corev1.SecretTypeServiceAccountToken},
			[]want{{"metadata.annotations[kubernetes.io/service-account.name]", field.ErrorTypeRequired}}},
		{"bad key", corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a b": nil}}, []want{{"data[a b]", field.ErrorTypeInvalid}}},
		{"too big", corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": make([]byte, MaxDataSize+1)}},
			[]want{{"data", field.ErrorTypeTooLong}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, s.Validate(ctx, &tc.sec), tc.want...) })
	}

	upd := sec.DeepCopy()
	upd.Type = corev1.SecretTypeOpaque
	checkErrors(t, s.ValidateUpdate(ctx, upd, sec), want{"type", field.ErrorTypeInvalid})
	frozen := opaque.DeepCopy()
	frozen.Immutable = new(true)
	upd = frozen.DeepCopy()
	upd.Data["password"] = []byte("y")
	checkErrors(t, s.ValidateUpdate(ctx, upd, frozen), want{"data", field.ErrorTypeForbidden})

	if got := s.SelectableFields(sec); len(got) != 1 || got["type"] != string(corev1.SecretTypeTLS) {
		t.Errorf("fields = %v", got)
	}
}
