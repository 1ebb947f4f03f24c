package printers

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Webhook configurations print as kube-apiserver prints them: their name,
// how many webhooks they hold, and their age.
func init() {
	gv := admissionregistrationv1.SchemeGroupVersion
	webhooks := column("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration")
	register(gv.WithKind("MutatingWebhookConfiguration"), []metav1.TableColumnDefinition{nameColumn, webhooks, ageColumn},
		func(c *admissionregistrationv1.MutatingWebhookConfiguration) (metav1.TableRow, error) {
			return cells(c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp))
		})
	register(gv.WithKind("ValidatingWebhookConfiguration"), []metav1.TableColumnDefinition{nameColumn, webhooks, ageColumn},
		func(c *admissionregistrationv1.ValidatingWebhookConfiguration) (metav1.TableRow, error) {
			return cells(c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp))
		})
}
