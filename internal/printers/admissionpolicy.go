package printers

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The printers of the admission policies, as upstream's.
func init() {
	register(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Validations", "integer", "Validations indicates the number of validation rules defined in this configuration"),
		column("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
		ageColumn,
	}, func(p *admissionregistrationv1.ValidatingAdmissionPolicy) (metav1.TableRow, error) {
		paramKind := "<unset>"
		if k := p.Spec.ParamKind; k != nil {
			paramKind = k.APIVersion + "/" + k.Kind
		}
		return cells(p.Name, int64(len(p.Spec.Validations)), paramKind, age(p.CreationTimestamp))
	})
	register(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicyBinding"), []metav1.TableColumnDefinition{
		nameColumn,
		column("PolicyName", "string", "PolicyName indicates the policy definition which the policy binding binded to"),
		column("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
		ageColumn,
	}, func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) (metav1.TableRow, error) {
		return cells(b.Name, b.Spec.PolicyName, paramRefCell(b.Spec.ParamRef), age(b.CreationTimestamp))
	})
	register(admissionregistrationv1.SchemeGroupVersion.WithKind("MutatingAdmissionPolicy"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Mutations", "integer", "Mutation indicates the number of mutations rules defined in this configuration"),
		column("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
		ageColumn,
	}, func(p *admissionregistrationv1.MutatingAdmissionPolicy) (metav1.TableRow, error) {
		paramKind := "<unset>"
		if k := p.Spec.ParamKind; k != nil {
			paramKind = k.APIVersion + "/" + k.Kind
		}
		return cells(p.Name, int64(len(p.Spec.Mutations)), paramKind, age(p.CreationTimestamp))
	})
	register(admissionregistrationv1.SchemeGroupVersion.WithKind("MutatingAdmissionPolicyBinding"), []metav1.TableColumnDefinition{
		nameColumn,
		column("PolicyName", "string", "PolicyName indicates the policy definition which the policy binding binded to"),
		column("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
		ageColumn,
	}, func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) (metav1.TableRow, error) {
		return cells(b.Name, b.Spec.PolicyName, paramRefCell(b.Spec.ParamRef), age(b.CreationTimestamp))
	})
}

// paramRefCell is a binding's PARAMREF: namespace/name ("*" for any
// namespace), the selector, or <unset>.
func paramRefCell(r *admissionregistrationv1.ParamRef) string {
	switch {
	case r == nil:
		return "<unset>"
	case r.Name != "" && r.Namespace != "":
		return r.Namespace + "/" + r.Name
	case r.Name != "":
		return "*/" + r.Name
	case r.Selector != nil:
		return r.Selector.String()
	}
	return "<unset>"
}
