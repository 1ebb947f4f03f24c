package printers

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CustomResourceDefinitions print as upstream's apiextensions-apiserver
// prints them (its default table): their name and when they were created.
func init() {
	register(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Created At", "date", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]),
	}, func(c *apiextensionsv1.CustomResourceDefinition) (metav1.TableRow, error) {
		return cells(c.Name, createdAt(c.CreationTimestamp))
	})
}
