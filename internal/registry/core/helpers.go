package core

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Messages shared with upstream.
const (
	isNegativeErrorMsg    = apivalidation.IsNegativeErrorMsg
	isNotPositiveErrorMsg = "must be greater than zero"
	immutableErrorMsg     = apivalidation.FieldImmutableErrorMsg
)

var supportedPortProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

// ValidatePortNumber checks that port is a valid (1-65535) port number.
func ValidatePortNumber(port int32, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(fldPath, port, msg))
	}
	return errs
}

// ValidatePortNumOrName checks an int-or-string port: a valid number, or a
// valid IANA_SVC_NAME.
func ValidatePortNumOrName(port intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch port.Type {
	case intstr.Int:
		errs = ValidatePortNumber(port.IntVal, fldPath)
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(fldPath, port.StrVal, msg))
		}
	default:
		errs = append(errs, field.InternalError(fldPath, fmt.Errorf("unknown type: %v", port.Type)))
	}
	return errs
}

// ValidateProtocol checks a port protocol: required, TCP, UDP or SCTP.
func ValidateProtocol(p corev1.Protocol, fldPath *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if !sets.New(supportedPortProtocols...).Has(p) {
		return field.ErrorList{field.NotSupported(fldPath, p, supportedPortProtocols)}
	}
	return nil
}

// ValidateNonnegative checks that an optional integer is not negative.
func ValidateNonnegative[T ~int32 | ~int64](v *T, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apivalidation.ValidateNonnegativeField(int64(*v), fldPath)
}

// ValidatePositive checks that an optional integer is greater than zero.
func ValidatePositive[T ~int32 | ~int64](v *T, fldPath *field.Path) field.ErrorList {
	if v == nil || *v > 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(fldPath, *v, "must be greater than 0")}
}

// ValidateNonnegativeQuantity checks that q is not negative.
func ValidateNonnegativeQuantity(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(fldPath, q.String(), isNegativeErrorMsg)}
	}
	return nil
}

// ValidatePositiveQuantity checks that q is greater than zero.
func ValidatePositiveQuantity(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(fldPath, q.String(), isNotPositiveErrorMsg)}
	}
	return nil
}

// ValidateResourceName checks a resource name: a qualified name, without a
// prefix for the standard ones.
func ValidateResourceName(name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(string(name)) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	return errs
}

// ValidateResourceList checks each name and non-negative quantity of rl.
func ValidateResourceList(rl corev1.ResourceList, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(rl) {
		p := fldPath.Key(string(name))
		errs = append(errs, ValidateResourceName(name, p)...)
		errs = append(errs, ValidateNonnegativeQuantity(rl[name], p)...)
	}
	return errs
}

// ValidateIntOrPercent checks that v is a non-negative integer or a valid
// percentage ("25%").
func ValidateIntOrPercent(v *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	var errs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(fldPath, v, msg))
		}
	case intstr.Int:
		errs = apivalidation.ValidateNonnegativeField(int64(v.IntVal), fldPath)
	default:
		errs = append(errs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%')"))
	}
	return errs
}

// ValidateNotMoreThan100Percent checks that a percentage value is <= 100%.
func ValidateNotMoreThan100Percent(v *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if n, isPercent := PercentValue(v); isPercent && n > 100 {
		return field.ErrorList{field.Invalid(fldPath, v, "must not be greater than 100%")}
	}
	return nil
}

// PercentValue returns the value of a "N%" int-or-string and whether it is
// one.
func PercentValue(v *intstr.IntOrString) (int, bool) {
	if v == nil || v.Type != intstr.String || !strings.HasSuffix(v.StrVal, "%") {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(v.StrVal, "%d%%", &n); err != nil {
		return 0, false
	}
	return n, true
}

// IntOrPercentValue returns the number in v, whether an int or a percentage.
func IntOrPercentValue(v *intstr.IntOrString) int {
	if v == nil {
		return 0
	}
	if n, ok := PercentValue(v); ok {
		return n
	}
	return v.IntValue()
}

// ValidateDNS1123Label checks v is a DNS-1123 label.
func ValidateDNS1123Label(v string, fldPath *field.Path) field.ErrorList {
	return invalidEach(v, validation.IsDNS1123Label(v), fldPath)
}

// ValidateDNS1123Subdomain checks v is a DNS-1123 subdomain.
func ValidateDNS1123Subdomain(v string, fldPath *field.Path) field.ErrorList {
	return invalidEach(v, validation.IsDNS1123Subdomain(v), fldPath)
}

// ValidateQualifiedName checks v is a qualified name ("prefix/name").
func ValidateQualifiedName(v string, fldPath *field.Path) field.ErrorList {
	return invalidEach(v, validation.IsQualifiedName(v), fldPath)
}

func invalidEach(v any, msgs []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

// ValidateIP checks an IP address field, accepting the forms upstream's
// legacy fields accept.
func ValidateIP(ip string, fldPath *field.Path) field.ErrorList {
	return validation.IsValidIPForLegacyField(fldPath, ip, false, nil)
}

// ValidateCIDR checks a CIDR field, accepting the forms upstream's legacy
// fields accept.
func ValidateCIDR(cidr string, fldPath *field.Path) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(fldPath, cidr, false, nil)
}

// ValidateImmutable reports field.Invalid "field is immutable" when the
// values differ semantically.
func ValidateImmutable(newVal, oldVal any, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

// validateConditionStatus checks a condition status is True, False or Unknown.
func validateConditionStatus(s corev1.ConditionStatus, fldPath *field.Path) field.ErrorList {
	valid := []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}
	if !sets.New(valid...).Has(s) {
		return field.ErrorList{field.NotSupported(fldPath, s, valid)}
	}
	return nil
}

// mapsEqual reports whether two maps hold the same entries; nil and empty
// are equal.
func mapsEqual[M ~map[K]V, K comparable, V any](a, b M) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return equality.Semantic.DeepEqual(a, b)
}

// changedFields lists the JSON names of the top-level fields of two structs
// of the same type that differ, for "may not change" messages.
func changedFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := 0; i < va.NumField(); i++ {
		if equality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = va.Type().Field(i).Name
		}
		out = append(out, name)
	}
	return out
}

func sortedKeys[M ~map[K]V, K ~string, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
