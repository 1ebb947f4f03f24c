package printers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The printers of core/v1 other than pods, events and endpoints.
// LimitRanges have none upstream either and get the fallback.
func init() {
	core := corev1.SchemeGroupVersion
	register(core.WithKind("ConfigMap"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
		ageColumn,
	}, printConfigMap)
	register(core.WithKind("Namespace"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Status", "string", "The status of the namespace"),
		ageColumn,
	}, printNamespace)
	register(core.WithKind("Node"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Status", "string", "The status of the node"),
		column("Roles", "string", "The roles of the node"),
		ageColumn,
		column("Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]),
		wideColumn("Internal-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"]),
		wideColumn("External-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"]),
		wideColumn("OS-Image", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]),
		wideColumn("Kernel-Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]),
		wideColumn("Container-Runtime", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]),
	}, printNode)
	register(core.WithKind("PersistentVolume"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Capacity", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]),
		column("Access Modes", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]),
		column("Reclaim Policy", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]),
		column("Status", "string", corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]),
		column("Claim", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]),
		column("StorageClass", "string", "StorageClass of the pv"),
		column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
		column("Reason", "string", corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]),
		ageColumn,
		wideColumn("VolumeMode", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]),
	}, printPersistentVolume)
	register(core.WithKind("PersistentVolumeClaim"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Status", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"]),
		column("Volume", "string", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"]),
		column("Capacity", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"]),
		column("Access Modes", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"]),
		column("StorageClass", "string", "StorageClass of the pvc"),
		column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
		ageColumn,
		wideColumn("VolumeMode", "string", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"]),
	}, printPersistentVolumeClaim)
	register(core.WithKind("ResourceQuota"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
		column("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
		ageColumn,
	}, printResourceQuota)
	register(core.WithKind("Secret"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Type", "string", corev1.Secret{}.SwaggerDoc()["type"]),
		column("Data", "string", corev1.Secret{}.SwaggerDoc()["data"]),
		ageColumn,
	}, printSecret)
	// Upstream dropped the SECRETS column once token Secrets stopped being
	// generated for service accounts.
	register(core.WithKind("ServiceAccount"), []metav1.TableColumnDefinition{
		nameColumn,
		ageColumn,
	}, printServiceAccount)
	register(core.WithKind("Service"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Type", "string", corev1.ServiceSpec{}.SwaggerDoc()["type"]),
		column("Cluster-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]),
		column("External-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]),
		column("Port(s)", "string", corev1.ServiceSpec{}.SwaggerDoc()["ports"]),
		ageColumn,
		wideColumn("Selector", "string", corev1.ServiceSpec{}.SwaggerDoc()["selector"]),
	}, printService)

	// A Status is printed when a client asks a Table of, say, a deletion.
	register(metav1.Unversioned.WithKind("Status"), []metav1.TableColumnDefinition{
		column("Status", "string", metav1.Status{}.SwaggerDoc()["status"]),
		column("Reason", "string", metav1.Status{}.SwaggerDoc()["reason"]),
		// "Message" (sic): upstream's description is empty.
		column("Message", "string", metav1.Status{}.SwaggerDoc()["Message"]),
	}, func(s *metav1.Status) (metav1.TableRow, error) {
		return cells(s.Status, string(s.Reason), s.Message)
	})
}

func printConfigMap(cm *corev1.ConfigMap) (metav1.TableRow, error) {
	return cells(cm.Name, int64(len(cm.Data)+len(cm.BinaryData)), age(cm.CreationTimestamp))
}

func printNamespace(ns *corev1.Namespace) (metav1.TableRow, error) {
	return cells(ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp))
}

const (
	// labelNodeRolePrefix labels a node with a role: node-role.kubernetes.io/<role>="".
	labelNodeRolePrefix = "node-role.kubernetes.io/"
	// nodeLabelRole labels a node with a role: kubernetes.io/role=<role>.
	nodeLabelRole = "kubernetes.io/role"
)

func printNode(node *corev1.Node) (metav1.TableRow, error) {
	var status []string
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			// The last Ready condition wins, as upstream's condition map.
			status = []string{string(c.Type)}
			if c.Status != corev1.ConditionTrue {
				status = []string{"Not" + string(c.Type)}
			}
		}
	}
	if len(status) == 0 {
		status = []string{"Unknown"}
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	info := node.Status.NodeInfo
	return cells(node.Name, strings.Join(status, ","), orNone(strings.Join(nodeRoles(node), ",")),
		age(node.CreationTimestamp), info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP), nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion))
}

// nodeRoles returns the sorted roles a node's labels give it.
func nodeRoles(node *corev1.Node) []string {
	var roles []string
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); role != "" {
				roles = append(roles, role)
			}
		case k == nodeLabelRole && v != "":
			roles = append(roles, v)
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// nodeAddress returns the node's first address of type typ, or "<none>".
func nodeAddress(node *corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return "<none>"
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

func printPersistentVolume(pv *corev1.PersistentVolume) (metav1.TableRow, error) {
	claim := ""
	if pv.Spec.ClaimRef != nil {
		claim = pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
	}
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	class := pv.Spec.StorageClassName
	if c, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = c
	}
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	return cells(pv.Name, capacity.String(), accessModes(pv.Spec.AccessModes),
		string(pv.Spec.PersistentVolumeReclaimPolicy), phase, claim, class,
		deref(pv.Spec.VolumeAttributesClassName, "<unset>"), pv.Status.Reason,
		age(pv.CreationTimestamp), volumeMode(pv.Spec.VolumeMode))
}

func printPersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) (metav1.TableRow, error) {
	phase := string(pvc.Status.Phase)
	if pvc.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if pvc.Spec.VolumeName != "" {
		modes = accessModes(pvc.Status.AccessModes)
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
	}
	class := deref(pvc.Spec.StorageClassName, "")
	if c, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = c
	}
	return cells(pvc.Name, phase, pvc.Spec.VolumeName, capacity, modes, class,
		deref(pvc.Spec.VolumeAttributesClassName, "<unset>"), age(pvc.CreationTimestamp),
		volumeMode(pvc.Spec.VolumeMode))
}

// accessModes abbreviates access modes: "RWO,ROX,RWX,RWOP", in that order.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range []struct {
		mode corev1.PersistentVolumeAccessMode
		abbr string
	}{
		{corev1.ReadWriteOnce, "RWO"},
		{corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"},
		{corev1.ReadWriteOncePod, "RWOP"},
	} {
		if slices.Contains(modes, m.mode) {
			out = append(out, m.abbr)
		}
	}
	return strings.Join(out, ",")
}

func volumeMode(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return "<unset>"
	}
	return string(*m)
}

func printResourceQuota(q *corev1.ResourceQuota) (metav1.TableRow, error) {
	names := make([]corev1.ResourceName, 0, len(q.Status.Hard))
	for name := range q.Status.Hard {
		names = append(names, name)
	}
	slices.Sort(names)
	var requests, limits []string
	for _, name := range names {
		used, hard := q.Status.Used[name], q.Status.Hard[name]
		s := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if pieces := strings.Split(string(name), "."); len(pieces) > 1 && pieces[0] == "limits" {
			limits = append(limits, s)
		} else {
			requests = append(requests, s)
		}
	}
	return cells(q.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), age(q.CreationTimestamp))
}

func printSecret(s *corev1.Secret) (metav1.TableRow, error) {
	return cells(s.Name, string(s.Type), int64(len(s.Data)), age(s.CreationTimestamp))
}

func printServiceAccount(sa *corev1.ServiceAccount) (metav1.TableRow, error) {
	return cells(sa.Name, age(sa.CreationTimestamp))
}

func printService(svc *corev1.Service) (metav1.TableRow, error) {
	clusterIP := "<none>"
	switch {
	case len(svc.Spec.ClusterIPs) > 0:
		clusterIP = svc.Spec.ClusterIPs[0]
	case svc.Spec.ClusterIP != "":
		clusterIP = svc.Spec.ClusterIP
	}
	return cells(svc.Name, string(svc.Spec.Type), clusterIP, serviceExternalIP(svc),
		orNone(servicePorts(svc.Spec.Ports)), age(svc.CreationTimestamp), labels.FormatLabels(svc.Spec.Selector))
}

// serviceExternalIP prints the external addresses of a service by type.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		return orNone(strings.Join(svc.Spec.ExternalIPs, ","))
	case corev1.ServiceTypeLoadBalancer:
		ips := loadBalancerIngress(svc.Status.LoadBalancer.Ingress)
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(append(ips, svc.Spec.ExternalIPs...), ",")
		}
		if len(ips) > 0 {
			return strings.Join(ips, ",")
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// loadBalancerIngress returns the sorted, distinct IPs (or else hostnames)
// of load-balancer ingress points.
func loadBalancerIngress(ingress []corev1.LoadBalancerIngress) []string {
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
	return slices.Compact(out)
}

// servicePorts prints ports as "80/TCP" or, with a node port, "80:30080/TCP".
func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}
