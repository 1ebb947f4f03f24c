package admissionregistration

import "github.com/google/cel-go/cel"

type celType = cel.Type

var celBool = cel.BoolType
