//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package printers

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func init() {
	register(corev1.SchemeGroupVersion.WithKind("Endpoints"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
		ageColumn,
	}, printEndpoints)
}

func printEndpoints(ep *corev1.Endpoints) (metav1.TableRow, error) {
	return cells(ep.Name, formatEndpoints(ep), age(ep.CreationTimestamp))
}

// formatEndpoints lists the first three addresses (with their ports) of
// the endpoints and how many more there are.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	count := 0
	add := func(s string) {
		if len(list) < max {
			list = append(list, s)
		}
		count++
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			// Headless services may have no ports.
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	return ret
}
