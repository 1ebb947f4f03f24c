package scheduler_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scheduler.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const mostAllocatedConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 1
        - name: memory
          weight: 1
`

// TestMostAllocated runs a server whose --scheduler-config packs pods, and
// checks the Priority admission step on it.
func TestMostAllocated(t *testing.T) {
	s := startServer(t, framework.WithArgs("--scheduler-config", writeConfig(t, mostAllocatedConfig)))
	cs := s.Clientset()
	ns := newNamespace(t, cs)
	createNode(t, cs, nodeSpec{name: "n0", cpu: "4"})
	createNode(t, cs, nodeSpec{name: "n1", cpu: "4"})
	first := ""
	for _, name := range []string{"a", "b", "c"} {
		createPod(t, cs, ns, podSpec{name: name, cpu: "1"})
		got := waitBound(t, cs, ns, name)
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("MostAllocated put pod %s on %s, away from the others on %s", name, got, first)
		}
	}

	t.Run("PriorityAdmission", func(t *testing.T) {
		pc, err := cs.SchedulingV1().PriorityClasses().Get(ctx(t), "system-cluster-critical", metav1.GetOptions{})
		if err != nil || pc.Value != 2000000000 {
			t.Fatalf("system-cluster-critical: %v %v", pc, err)
		}
		pod := createPod(t, cs, ns, podSpec{name: "critical", priorityClass: "system-node-critical"})
		if pod.Spec.Priority == nil || *pod.Spec.Priority != 2000001000 {
			t.Errorf("system-node-critical pod's priority: %v", pod.Spec.Priority)
		}
		_, err = cs.CoreV1().Pods(ns).Create(ctx(t), makePod(ns, podSpec{name: "nope", priorityClass: "nope"}), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "no PriorityClass with name nope was found") {
			t.Errorf("pod of a missing class: %v, want 403 no PriorityClass with name nope was found", err)
		}
		// Without a class and without a default, a priority given must be 0.
		own := makePod(ns, podSpec{name: "own"})
		own.Spec.Priority = new(int32(7))
		_, err = cs.CoreV1().Pods(ns).Create(ctx(t), own, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 0") {
			t.Errorf("pod with its own priority and no class: %v", err)
		}
		createPriorityClass(t, cs, "e2e-default", 500, corev1.PreemptNever, true)
		second := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-second"}, Value: 600, GlobalDefault: true}
		_, err = cs.SchedulingV1().PriorityClasses().Create(ctx(t), second, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PriorityClass e2e-default is already marked as default. Only one default can exist") {
			t.Errorf("a second default class: %v", err)
		}
		pod = createPod(t, cs, ns, podSpec{name: "defaulted"})
		if pod.Spec.PriorityClassName != "e2e-default" || pod.Spec.Priority == nil || *pod.Spec.Priority != 500 ||
			pod.Spec.PreemptionPolicy == nil || *pod.Spec.PreemptionPolicy != corev1.PreemptNever {
			t.Errorf("pod without a class: class %q priority %v policy %v, want the global default", pod.Spec.PriorityClassName, pod.Spec.Priority, pod.Spec.PreemptionPolicy)
		}
		bad := makePod(ns, podSpec{name: "bad", priorityClass: "e2e-default"})
		bad.Spec.Priority = new(int32(7))
		_, err = cs.CoreV1().Pods(ns).Create(ctx(t), bad, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the integer value of priority (7) must not be provided in pod spec") {
			t.Errorf("pod with its own priority: %v", err)
		}
	})
}

// TestBadConfig: a configuration the scheduler cannot use stops the server
// at once with a clear error.
func TestBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	bin := framework.Havre(t)
	for name, tc := range map[string]struct{ config, want string }{
		"strategy": {strings.Replace(mostAllocatedConfig, "MostAllocated", "Fullest", 1),
			`scoringStrategy.type: Unsupported value: "Fullest"`},
		"unknown field": {strings.Replace(mostAllocatedConfig, "schedulerName", "schedulerNom", 1), `unknown field "schedulerNom"`},
		"kind":          {strings.Replace(mostAllocatedConfig, "KubeSchedulerConfiguration", "Scheduler", 1), `kind: Unsupported value: "Scheduler"`},
	} {
		t.Run(name, func(t *testing.T) {
			c, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			port, err := framework.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(c, bin, "server", "--disable-agent", "--bind-address", "127.0.0.1",
				"--https-port", strconv.Itoa(port), "--data-dir", t.TempDir(),
				"--scheduler-config", writeConfig(t, tc.config))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("server with a bad config: %v (want a non-zero exit)\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not contain %q:\n%s", tc.want, out)
			}
		})
	}
}
