package printers_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/havre/havre/internal/printers"
	"github.com/havre/havre/internal/registry/catalog"
)

// noPrinter are the served kinds upstream has no printer for either.
var noPrinter = map[schema.GroupVersionKind]bool{
	corev1.SchemeGroupVersion.WithKind("LimitRange"): true,
	// The reviews are never listed.
	authenticationv1.SchemeGroupVersion.WithKind("SelfSubjectReview"):       true,
	authorizationv1.SchemeGroupVersion.WithKind("LocalSubjectAccessReview"): true,
	authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview"):  true,
	authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectRulesReview"):   true,
	authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview"):      true,
}

// servedScheme holds every served type: client-go's and the CRDs'.
var servedScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(apiregistrationv1.AddToScheme(s))
	return s
}()

// extraKinds are printed kinds that are not catalog resources.
var extraKinds = []schema.GroupVersionKind{
	autoscalingv1.SchemeGroupVersion.WithKind("Scale"),
	metav1.Unversioned.WithKind("Status"),
}

// servedKinds returns the kind of every catalog resource.
func servedKinds() []schema.GroupVersionKind {
	var kinds []schema.GroupVersionKind
	for _, r := range catalog.Resources() {
		kinds = append(kinds, r.GroupVersionKind())
	}
	return kinds
}

func TestEveryServedKindHasAPrinter(t *testing.T) {
	for _, gvk := range servedKinds() {
		_, ok := printers.Columns(gvk)
		if ok == noPrinter[gvk] {
			t.Errorf("%v: has a printer %v, want %v", gvk, ok, !noPrinter[gvk])
		}
	}
}

// TestRowsMatchColumns prints an empty object of every kind: the printer
// must be found from the object's Go type, be the one of its scheme kind,
// and give one cell per column, of the column's type.
func TestRowsMatchColumns(t *testing.T) {
	for _, gvk := range append(servedKinds(), extraKinds...) {
		t.Run(gvk.String(), func(t *testing.T) {
			obj, err := servedScheme.New(gvk)
			if err != nil {
				t.Fatal(err)
			}
			if kinds, _, err := servedScheme.ObjectKinds(obj); err != nil || kinds[0] != gvk {
				t.Fatalf("scheme kind of %T is %v (%v), want %v", obj, kinds, err, gvk)
			}
			cols, _ := printers.Columns(gvk)
			p, _ := printers.For(gvk)
			row, err := p.Row(obj)
			if err != nil {
				t.Fatal(err)
			}
			if len(row.Cells) != len(cols) {
				t.Fatalf("%d cells for %d columns: %v", len(row.Cells), len(cols), row.Cells)
			}
			for i, c := range row.Cells {
				if !cellHasType(c, cols[i].Type) {
					t.Errorf("column %s (%s): cell %#v", cols[i].Name, cols[i].Type, c)
				}
			}
			if byType, err := printers.Row(obj); err != nil || !reflect.DeepEqual(byType, row) {
				t.Errorf("Row by Go type printed %v (%v), the kind's printer %v", byType, err, row)
			}
		})
	}
}

// cellHasType reports whether a cell may stand in a column of type typ.
// As upstream, some "string" columns hold numbers or booleans, and the
// "boolean" SUSPEND of CronJobs holds "True", "False" or "<unset>", and
// the "date" CREATED AT of roles an RFC 3339 string.
func cellHasType(cell interface{}, typ string) bool {
	switch cell.(type) {
	case string:
		return typ == "string" || typ == "boolean" || typ == "date"
	case int64:
		return typ == "integer" || typ == "string"
	case bool:
		return typ == "boolean" || typ == "string"
	}
	return false
}

func TestColumnDefinitions(t *testing.T) {
	for _, gvk := range append(servedKinds(), extraKinds...) {
		cols, _ := printers.Columns(gvk)
		names := 0
		for _, c := range cols {
			// Upstream looks the Status message up as "Message", which
			// the Swagger docs do not have.
			if c.Description == "" && (gvk.Kind != "Status" || c.Name != "Message") {
				t.Errorf("%v: column %q has no description", gvk, c.Name)
			}
			if c.Priority != 0 && c.Priority != 1 {
				t.Errorf("%v: column %q has priority %d", gvk, c.Name, c.Priority)
			}
			if c.Format == "name" {
				names++
			}
		}
		switch gvk.Kind {
		case "Status", "Scale":
			continue // no name column upstream
		case "Event":
			// The name is the last, wide column.
			if last := cols[len(cols)-1]; last.Name != "Name" || last.Format != "name" || last.Priority != 1 {
				t.Errorf("%v: last column %+v", gvk, last)
			}
		default:
			if cols[0].Name != "Name" || cols[0].Format != "name" {
				t.Errorf("%v: first column %+v", gvk, cols[0])
			}
		}
		want := 1
		if gvk.Kind == "VolumeAttachment" {
			want = 2 // upstream formats ATTACHER as a name too
		}
		if names != want {
			t.Errorf("%v: %d columns of format name, want %d", gvk, names, want)
		}
	}
}

// header returns the column names of a kind as kubectl prints them.
func header(gvk schema.GroupVersionKind, wide bool) string {
	cols, _ := printers.Columns(gvk)
	var names []string
	for _, c := range cols {
		if c.Priority == 0 || wide {
			names = append(names, strings.ToUpper(c.Name))
		}
	}
	return strings.Join(names, " ")
}

// TestHeaders pins the headers kubectl prints for the kinds whose upstream
// output is best known.
func TestHeaders(t *testing.T) {
	core := corev1.SchemeGroupVersion
	tests := []struct {
		gvk        schema.GroupVersionKind
		std, extra string // extra: the -o wide columns
	}{
		{core.WithKind("Pod"), "NAME READY STATUS RESTARTS AGE", "IP NODE NOMINATED NODE READINESS GATES"},
		{core.WithKind("Service"), "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "SELECTOR"},
		{core.WithKind("Node"), "NAME STATUS ROLES AGE VERSION", "INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"},
		{core.WithKind("Namespace"), "NAME STATUS AGE", ""},
		{core.WithKind("ConfigMap"), "NAME DATA AGE", ""},
		{core.WithKind("Secret"), "NAME TYPE DATA AGE", ""},
		{core.WithKind("ServiceAccount"), "NAME AGE", ""},
		{core.WithKind("Endpoints"), "NAME ENDPOINTS AGE", ""},
		{core.WithKind("Event"), "LAST SEEN TYPE REASON OBJECT MESSAGE", "SUBOBJECT SOURCE FIRST SEEN COUNT NAME"},
		{core.WithKind("LimitRange"), "NAME AGE", ""},
		{core.WithKind("ResourceQuota"), "NAME REQUEST LIMIT AGE", ""},
		{core.WithKind("PersistentVolume"), "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE", "VOLUMEMODE"},
		{core.WithKind("PersistentVolumeClaim"), "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE", "VOLUMEMODE"},
		{gv("apps", "v1", "Deployment"), "NAME READY UP-TO-DATE AVAILABLE AGE", "CONTAINERS IMAGES SELECTOR"},
		{gv("apps", "v1", "ReplicaSet"), "NAME DESIRED CURRENT READY AGE", "CONTAINERS IMAGES SELECTOR"},
		{gv("apps", "v1", "StatefulSet"), "NAME READY AGE", "CONTAINERS IMAGES"},
		{gv("apps", "v1", "DaemonSet"), "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE", "CONTAINERS IMAGES SELECTOR"},
		{gv("apps", "v1", "ControllerRevision"), "NAME CONTROLLER REVISION AGE", ""},
		{gv("batch", "v1", "Job"), "NAME STATUS COMPLETIONS DURATION AGE", "CONTAINERS IMAGES SELECTOR"},
		{gv("batch", "v1", "CronJob"), "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE", "CONTAINERS IMAGES SELECTOR"},
		{gv("autoscaling", "v2", "HorizontalPodAutoscaler"), "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE", ""},
		{gv("coordination.k8s.io", "v1", "Lease"), "NAME HOLDER AGE", ""},
		{gv("discovery.k8s.io", "v1", "EndpointSlice"), "NAME ADDRESSTYPE PORTS ENDPOINTS AGE", ""},
		{gv("events.k8s.io", "v1", "Event"), "LAST SEEN TYPE REASON OBJECT MESSAGE", "SUBOBJECT SOURCE FIRST SEEN COUNT NAME"},
		{gv("networking.k8s.io", "v1", "Ingress"), "NAME CLASS HOSTS ADDRESS PORTS AGE", ""},
		{gv("networking.k8s.io", "v1", "IngressClass"), "NAME CONTROLLER PARAMETERS AGE", ""},
		{gv("networking.k8s.io", "v1", "NetworkPolicy"), "NAME POD-SELECTOR AGE", ""},
		{gv("policy", "v1", "PodDisruptionBudget"), "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE", ""},
		{gv("scheduling.k8s.io", "v1", "PriorityClass"), "NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY", ""},
		{gv("storage.k8s.io", "v1", "StorageClass"), "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE", ""},
		{gv("storage.k8s.io", "v1", "CSIStorageCapacity"), "NAME STORAGECLASSNAME CAPACITY", ""},
		{gv("storage.k8s.io", "v1", "CSIDriver"), "NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH MODES AGE", ""},
		{gv("storage.k8s.io", "v1", "CSINode"), "NAME DRIVERS AGE", ""},
		{gv("storage.k8s.io", "v1", "VolumeAttachment"), "NAME ATTACHER PV NODE ATTACHED AGE", ""},
		{gv("storage.k8s.io", "v1", "VolumeAttributesClass"), "NAME DRIVERNAME AGE", ""},
	}
	for _, tt := range tests {
		if got := header(tt.gvk, false); got != tt.std {
			t.Errorf("%v: header %q, want %q", tt.gvk, got, tt.std)
		}
		want := strings.TrimSpace(tt.std + " " + tt.extra)
		if tt.gvk.Kind == "Event" {
			want = "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"
		}
		if got := header(tt.gvk, true); got != want {
			t.Errorf("%v: wide header %q, want %q", tt.gvk, got, want)
		}
	}
}

func gv(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

func TestFallback(t *testing.T) {
	cols, ok := printers.Columns(gv("example.com", "v1", "Widget"))
	if ok || len(cols) != 2 || cols[0].Name != "Name" || cols[0].Format != "name" || cols[1].Name != "Age" {
		t.Fatalf("fallback columns %+v (ok %v)", cols, ok)
	}
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", CreationTimestamp: ago(48 * time.Hour)}}
	row, err := printers.Row(lr)
	if err != nil || !reflect.DeepEqual(row.Cells, []interface{}{"limits", "2d"}) {
		t.Fatalf("fallback row %v (%v)", row.Cells, err)
	}
	if _, err := printers.Row(&metav1.APIGroupList{}); err == nil {
		t.Error("the fallback printed an object without metadata")
	}
}

func TestPrinterRejectsOtherKinds(t *testing.T) {
	p, _ := printers.For(corev1.SchemeGroupVersion.WithKind("Pod"))
	if _, err := p.Row(&corev1.Service{}); err == nil {
		t.Error("the Pod printer printed a Service")
	}
}

// ago returns the time d ago.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(time.Now().Add(-d)) }

// cellsOf prints obj and checks it has one cell per column of its kind.
func cellsOf(t *testing.T, obj runtime.Object) map[string]interface{} {
	t.Helper()
	kinds, _, err := servedScheme.ObjectKinds(obj)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := printers.Columns(kinds[0])
	row, err := printers.Row(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(row.Cells) != len(cols) {
		t.Fatalf("%d cells for %d columns", len(row.Cells), len(cols))
	}
	out := make(map[string]interface{}, len(cols))
	for i, c := range cols {
		out[c.Name] = row.Cells[i]
	}
	return out
}

// checkCells compares the named cells of obj's row with want.
func checkCells(t *testing.T, obj runtime.Object, want map[string]interface{}) {
	t.Helper()
	got := cellsOf(t, obj)
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("no column %q", name)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", name, g, w)
		}
	}
}
