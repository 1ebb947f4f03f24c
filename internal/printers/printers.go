// Package printers renders the kinds Havre serves as the rows and columns of
// a meta.k8s.io Table, the way kube-apiserver's printers
// (k8s.io/kubernetes/pkg/printers/internalversion) do, so that `kubectl get`
// prints the same columns against Havre as against Kubernetes.
//
// As kube-apiserver does, a row always carries every cell, the -o wide ones
// included (columns with priority 1); kubectl hides those unless asked.
package printers

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Printer prints the objects of one kind.
type Printer struct {
	columns []metav1.TableColumnDefinition
	// typ is the Go type printed; nil for the fallback, which prints any
	// object with metadata.
	typ reflect.Type
	row func(runtime.Object) (metav1.TableRow, error)
}

// Columns returns the column definitions of the kind; every row has one cell
// per column. The slice is shared: do not modify it.
func (p *Printer) Columns() []metav1.TableColumnDefinition { return p.columns }

// Row returns the cells (and, for pods, the conditions) of one object, which
// must be of the printer's kind. Row.Object is left for the caller to fill.
func (p *Printer) Row(obj runtime.Object) (metav1.TableRow, error) {
	if p.typ != nil && reflect.TypeOf(obj) != p.typ {
		return metav1.TableRow{}, fmt.Errorf("printers: the %v printer cannot print a %T", p.typ, obj)
	}
	return p.row(obj)
}

var (
	byKind = map[schema.GroupVersionKind]*Printer{}
	byType = map[reflect.Type]*Printer{}
)

// register adds the printer of kind gvk, whose objects are of Go type T.
func register[T runtime.Object](gvk schema.GroupVersionKind, columns []metav1.TableColumnDefinition, row func(T) (metav1.TableRow, error)) {
	typ := reflect.TypeFor[T]()
	if _, dup := byKind[gvk]; dup {
		panic(fmt.Sprintf("printers: %v registered twice", gvk))
	}
	p := &Printer{columns: columns, typ: typ, row: func(obj runtime.Object) (metav1.TableRow, error) { return row(obj.(T)) }}
	byKind[gvk] = p
	byType[typ] = p
}

// fallback prints kinds without a printer of their own: NAME and AGE.
// (kube-apiserver's default is NAME and CREATED AT.)
var fallback = &Printer{
	columns: []metav1.TableColumnDefinition{nameColumn, ageColumn},
	row: func(obj runtime.Object) (metav1.TableRow, error) {
		acc, err := meta.Accessor(obj)
		if err != nil {
			return metav1.TableRow{}, err
		}
		return cells(acc.GetName(), age(acc.GetCreationTimestamp()))
	},
}

// For returns the printer of kind gvk and true, or the NAME/AGE fallback and
// false when the kind has none.
func For(gvk schema.GroupVersionKind) (*Printer, bool) {
	if p, ok := byKind[gvk]; ok {
		return p, true
	}
	return fallback, false
}

// Columns returns the column definitions of kind gvk and whether the kind
// has a printer of its own (else the NAME/AGE fallback's are returned).
func Columns(gvk schema.GroupVersionKind) ([]metav1.TableColumnDefinition, bool) {
	p, ok := For(gvk)
	return p.Columns(), ok
}

// Row prints obj with the printer of its Go type, or the fallback.
func Row(obj runtime.Object) (metav1.TableRow, error) {
	p, ok := byType[reflect.TypeOf(obj)]
	if !ok {
		p = fallback
	}
	return p.Row(obj)
}

// cells makes the row of a printer that has neither conditions nor errors.
func cells(c ...interface{}) (metav1.TableRow, error) {
	return metav1.TableRow{Cells: c}, nil
}

// Column definitions shared by many kinds.
var (
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name",
		Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
	ageColumn        = column("Age", "string", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])
	containersColumn = wideColumn("Containers", "string", "Names of each container in the template.")
	imagesColumn     = wideColumn("Images", "string", "Images referenced by each container in the template.")
)

// column defines a column printed by default.
func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wideColumn defines a column printed only with -o wide.
func wideColumn(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Priority: 1, Description: description}
}

// age is the time elapsed since ts, as upstream's translateTimestampSince.
func age(ts metav1.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(ts.Time))
}

// microAge is age for a MicroTime.
func microAge(ts metav1.MicroTime) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(ts.Time))
}

// orNone returns s, or "<none>" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// deref returns *p, or def when p is nil.
func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// containerCells lays out the names and the images of containers, each
// comma-separated.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	i := make([]string, len(containers))
	for k, c := range containers {
		n[k], i[k] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

// listWithMore joins the first max entries of a list of count, adding
// " + N more..." for the others, or returns "<unset>" for an empty list.
func listWithMore(list []string, count, max int) string {
	ret := strings.Join(list, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		return "<unset>"
	}
	return ret
}

// boolPtr prints an optional boolean as "True", "False" or "<unset>".
func boolPtr(b *bool) string {
	switch {
	case b == nil:
		return "<unset>"
	case *b:
		return "True"
	default:
		return "False"
	}
}
