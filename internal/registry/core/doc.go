// Package core holds the strategies for the core ("" group, v1) kinds:
// their v1 defaults, the create-time behaviour upstream puts in strategies
// and admission plugins, validation with upstream field paths, and the
// field-selector fields each kind supports.
//
// It also exports the pod-template, port, quantity and PVC helpers that the
// workload groups (apps, batch) and others reuse, so every pod spec in the
// system is defaulted and validated by the same code.
package core
