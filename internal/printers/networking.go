package printers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func init() {
	register(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), []metav1.TableColumnDefinition{
		nameColumn,
		column("AddressType", "string", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["addressType"]),
		column("Ports", "string", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["ports"]),
		column("Endpoints", "string", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["endpoints"]),
		ageColumn,
	}, printEndpointSlice)

	networking := networkingv1.SchemeGroupVersion
	register(networking.WithKind("Ingress"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
		column("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
		column("Address", "string", "Address is a list containing ingress points for the load-balancer"),
		column("Ports", "string", "Ports of TLS configurations that open"),
		ageColumn,
	}, printIngress)
	register(networking.WithKind("IngressClass"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Controller", "string", "Controller that is responsible for handling this class"),
		column("Parameters", "string", "A reference to a resource with additional parameters"),
		ageColumn,
	}, printIngressClass)
	register(networking.WithKind("NetworkPolicy"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Pod-Selector", "string", extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]),
		ageColumn,
	}, printNetworkPolicy)
}

func printEndpointSlice(es *discoveryv1.EndpointSlice) (metav1.TableRow, error) {
	const max = 3
	var ports []string
	for _, p := range es.Ports {
		if len(ports) == max {
			break
		}
		switch {
		case p.Port != nil:
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			ports = append(ports, *p.Name)
		default:
			ports = append(ports, "*")
		}
	}
	var addresses []string
	count := 0
	for _, ep := range es.Endpoints {
		for _, a := range ep.Addresses {
			if len(addresses) < max {
				addresses = append(addresses, a)
			}
			count++
		}
	}
	return cells(es.Name, string(es.AddressType), listWithMore(ports, len(es.Ports), max),
		listWithMore(addresses, count, max), age(es.CreationTimestamp))
}

func printIngress(ing *networkingv1.Ingress) (metav1.TableRow, error) {
	ports := "80"
	if len(ing.Spec.TLS) > 0 {
		ports = "80, 443"
	}
	return cells(ing.Name, deref(ing.Spec.IngressClassName, "<none>"), ingressHosts(ing.Spec.Rules),
		ingressAddress(ing.Status.LoadBalancer.Ingress), ports, age(ing.CreationTimestamp))
}

// ingressHosts lists the first three hosts the rules name, or "*" when they
// name none; past three, it adds how many rules more there are.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == max {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	switch {
	case len(hosts) == 0:
		return "*"
	case more:
		return fmt.Sprintf("%s + %d more...", strings.Join(hosts, ","), len(rules)-max)
	}
	return strings.Join(hosts, ",")
}

// ingressAddress prints the sorted, distinct IPs (or else hostnames) of an
// Ingress's load balancer.
func ingressAddress(ingress []networkingv1.IngressLoadBalancerIngress) string {
	var out []string
	for _, in := range ingress {
		switch {
		case in.IP != "":
			out = append(out, in.IP)
		case in.Hostname != "":
			out = append(out, in.Hostname)
		}
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ",")
}

func printIngressClass(ic *networkingv1.IngressClass) (metav1.TableRow, error) {
	parameters := "<none>"
	if p := ic.Spec.Parameters; p != nil {
		parameters = p.Kind
		if p.APIGroup != nil {
			parameters += "." + *p.APIGroup
		}
		parameters += "/" + p.Name
	}
	return cells(ic.Name, ic.Spec.Controller, parameters, age(ic.CreationTimestamp))
}

func printNetworkPolicy(np *networkingv1.NetworkPolicy) (metav1.TableRow, error) {
	return cells(np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), age(np.CreationTimestamp))
}
