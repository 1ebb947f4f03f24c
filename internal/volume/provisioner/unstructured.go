package provisioner

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	return unstructured.NestedString(obj, fields...)
}

func unstructuredBool(obj map[string]any, fields ...string) (bool, bool, error) {
	return unstructured.NestedBool(obj, fields...)
}

// unstructuredInt reads an integer that may have come as int64 or float64.
func unstructuredInt(obj map[string]any, fields ...string) (int64, bool, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, fields...)
	if !ok || err != nil {
		return 0, ok, err
	}
	switch n := v.(type) {
	case int64:
		return n, true, nil
	case float64:
		return int64(n), true, nil
	case int:
		return int64(n), true, nil
	}
	return 0, false, nil
}
