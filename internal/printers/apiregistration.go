package printers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// APIServices print as kube-aggregator prints them: the backing Service
// (or Local) and whether it is available, with the reason when not.
func init() {
	register(apiregistrationv1.SchemeGroupVersion.WithKind("APIService"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Service", "string", "The reference to the service that hosts this API endpoint."),
		column("Available", "string", "Whether this service is available."),
		ageColumn,
	}, func(a *apiregistrationv1.APIService) (metav1.TableRow, error) {
		service := "Local"
		if a.Spec.Service != nil {
			service = a.Spec.Service.Namespace + "/" + a.Spec.Service.Name
		}
		status := string(apiregistrationv1.ConditionUnknown)
		for _, c := range a.Status.Conditions {
			if c.Type != apiregistrationv1.Available {
				continue
			}
			switch {
			case c.Status == apiregistrationv1.ConditionTrue:
				status = string(c.Status)
			case c.Reason != "":
				status = fmt.Sprintf("%s (%s)", c.Status, c.Reason)
			default:
				status = string(c.Status)
			}
		}
		return cells(a.Name, service, status, age(a.CreationTimestamp))
	})
}
