package printers_test

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/printers"
)

// newPod returns a pod with the given app containers (c0, c1, ...) and
// init containers (i0, i1, ...), in phase, created two days ago.
func newPod(containers, initContainers int, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", CreationTimestamp: ago(48 * time.Hour)}}
	for i := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Image: "img"})
	}
	for i := range initContainers {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "i" + string(rune('0'+i)), Image: "img"})
	}
	p.Status.Phase = phase
	return p
}

func running(name string, ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func waiting(name, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func terminated(name, reason string, exitCode int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exitCode}}}
}

// restarted adds restarts to a status, the last run having ended ago.
func restarted(s corev1.ContainerStatus, count int32, ago time.Duration) corev1.ContainerStatus {
	s.RestartCount = count
	s.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(time.Now().Add(-ago))}
	return s
}

func condition(typ corev1.PodConditionType, status corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: typ, Status: status}
}

func TestPodStatus(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name                     string
		pod                      func() *corev1.Pod
		ready, status, restarts  string
		completed, failedRowCond bool
	}{
		{name: "Pending", ready: "0/1", status: "Pending", restarts: "0", pod: func() *corev1.Pod {
			return newPod(1, 0, corev1.PodPending)
		}},
		{name: "SchedulingGated", ready: "0/1", status: "SchedulingGated", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodPending)
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"}}
			return p
		}},
		{name: "ContainerCreating", ready: "0/2", status: "ContainerCreating", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodPending)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("c0", "ContainerCreating"), waiting("c1", "ContainerCreating")}
			return p
		}},
		{name: "Running", ready: "2/2", status: "Running", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c0", true), running("c1", true)}
			return p
		}},
		{name: "RunningNotAllReady", ready: "1/2", status: "Running", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c0", true), running("c1", false)}
			return p
		}},
		{name: "CrashLoopBackOff", ready: "1/2", status: "CrashLoopBackOff", restarts: "5 (10m ago)", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				restarted(waiting("c0", "CrashLoopBackOff"), 5, 10*time.Minute),
				running("c1", true),
			}
			return p
		}},
		{name: "RestartsSumLatest", ready: "2/2", status: "Running", restarts: "3 (10m ago)", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				restarted(running("c0", true), 1, 3*time.Hour),
				restarted(running("c1", true), 2, 10*time.Minute),
			}
			return p
		}},
		{name: "RestartsWithoutTime", ready: "1/1", status: "Running", restarts: "4", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			s := running("c0", true)
			s.RestartCount = 4
			p.Status.ContainerStatuses = []corev1.ContainerStatus{s}
			return p
		}},
		{name: "InitFirst", ready: "0/1", status: "Init:0/1", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{running("i0", false)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("c0", "PodInitializing")}
			return p
		}},
		{name: "InitWaitingPodInitializing", ready: "0/1", status: "Init:0/2", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 2, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{waiting("i0", "PodInitializing"), waiting("i1", "PodInitializing")}
			return p
		}},
		{name: "InitSecond", ready: "0/1", status: "Init:1/2", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 2, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i0", "Completed", 0), running("i1", false)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("c0", "PodInitializing")}
			return p
		}},
		{name: "InitCrashLoopBackOff", ready: "0/1", status: "Init:CrashLoopBackOff", restarts: "3 (10m ago)", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{restarted(waiting("i0", "CrashLoopBackOff"), 3, 10*time.Minute)}
			return p
		}},
		{name: "InitError", ready: "0/1", status: "Init:Error", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodFailed)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i0", "Error", 1)}
			return p
		}, failedRowCond: true},
		{name: "InitExitCode", ready: "0/1", status: "Init:ExitCode:3", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i0", "", 3)}
			return p
		}},
		{name: "InitSignal", ready: "0/1", status: "Init:Signal:9", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			s := terminated("i0", "", 137)
			s.State.Terminated.Signal = 9
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{s}
			return p
		}},
		{name: "PodInitializing", ready: "0/1", status: "PodInitializing", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionTrue)}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("i0", "Completed", 0)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("c0", "PodInitializing")}
			return p
		}},
		{name: "InitRestartsNotCountedOnceInitialised", ready: "1/1", status: "Running", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodRunning)
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionTrue)}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{restarted(terminated("i0", "Completed", 0), 2, 10*time.Minute)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c0", true)}
			return p
		}},
		{name: "Sidecar", ready: "2/2", status: "Running", restarts: "1 (10m ago)", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodRunning)
			p.Spec.InitContainers[0].RestartPolicy = &always
			started := true
			side := restarted(running("i0", true), 1, 10*time.Minute)
			side.Started = &started
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionTrue)}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{side}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c0", true)}
			return p
		}},
		{name: "SidecarNotStarted", ready: "0/2", status: "Init:0/1", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Spec.InitContainers[0].RestartPolicy = &always
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{running("i0", false)}
			return p
		}},
		{name: "Completed", ready: "0/1", status: "Completed", restarts: "0", completed: true, pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodSucceeded)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "Completed", 0)}
			return p
		}},
		{name: "CompletedButOneRunningReady", ready: "1/2", status: "Running", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodReady, corev1.ConditionTrue)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "Completed", 0), running("c1", true)}
			return p
		}},
		{name: "CompletedButOneRunningNotReady", ready: "1/2", status: "NotReady", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodReady, corev1.ConditionFalse)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "Completed", 0), running("c1", true)}
			return p
		}},
		{name: "CompletedButOneFailed", ready: "0/2", status: "Error", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "Completed", 0), terminated("c1", "Error", 1)}
			return p
		}},
		{name: "Error", ready: "0/1", status: "Error", restarts: "0", failedRowCond: true, pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodFailed)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "Error", 1)}
			return p
		}},
		{name: "OOMKilled", ready: "0/1", status: "OOMKilled", restarts: "2 (10m ago)", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{restarted(terminated("c0", "OOMKilled", 137), 2, 10*time.Minute)}
			return p
		}},
		{name: "ExitCode", ready: "0/1", status: "ExitCode:2", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "", 2)}
			return p
		}},
		{name: "Signal", ready: "0/1", status: "Signal:15", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			s := terminated("c0", "", 143)
			s.State.Terminated.Signal = 15
			p.Status.ContainerStatuses = []corev1.ContainerStatus{s}
			return p
		}},
		{name: "Evicted", ready: "0/1", status: "Evicted", restarts: "0", failedRowCond: true, pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodFailed)
			p.Status.Reason = "Evicted"
			return p
		}},
		{name: "Terminating", ready: "1/1", status: "Terminating", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			now := metav1.Now()
			p.DeletionTimestamp = &now
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c0", true)}
			return p
		}},
		{name: "TerminatingPending", ready: "0/1", status: "Terminating", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodPending)
			now := metav1.Now()
			p.DeletionTimestamp = &now
			return p
		}},
		{name: "DeletedAfterCompletion", ready: "0/1", status: "Completed", restarts: "0", completed: true, pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodSucceeded)
			now := metav1.Now()
			p.DeletionTimestamp = &now
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c0", "Completed", 0)}
			return p
		}},
		{name: "NodeLost", ready: "1/1", status: "Unknown", restarts: "0", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			now := metav1.Now()
			p.DeletionTimestamp = &now
			p.Status.Reason = "NodeLost"
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c0", true)}
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := tt.pod()
			checkCells(t, pod, map[string]interface{}{
				"Name": "p", "Ready": tt.ready, "Status": tt.status, "Restarts": tt.restarts, "Age": "2d",
			})
			row, err := printers.Row(pod)
			if err != nil {
				t.Fatal(err)
			}
			var want []metav1.TableRowCondition
			switch {
			case tt.completed:
				want = []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "The pod has completed successfully."}}
			case tt.failedRowCond:
				want = []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Failed", Message: "The pod failed."}}
			}
			if !reflect.DeepEqual(row.Conditions, want) {
				t.Errorf("conditions %+v, want %+v", row.Conditions, want)
			}
		})
	}
}

func TestPodWideCells(t *testing.T) {
	tests := []struct {
		name string
		pod  func() *corev1.Pod
		want map[string]interface{}
	}{
		{name: "Unscheduled", pod: func() *corev1.Pod { return newPod(1, 0, corev1.PodPending) },
			want: map[string]interface{}{"IP": "<none>", "Node": "<none>", "Nominated Node": "<none>", "Readiness Gates": "<none>"}},
		{name: "Scheduled", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.Spec.NodeName = "node-1"
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.7"}, {IP: "fd00::7"}}
			p.Status.PodIP = "10.0.0.7"
			p.Status.NominatedNodeName = "node-2"
			return p
		}, want: map[string]interface{}{"IP": "10.0.0.7", "Node": "node-1", "Nominated Node": "node-2"}},
		{name: "PodIPOnly", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.Status.PodIP = "10.0.0.8"
			return p
		}, want: map[string]interface{}{"IP": "10.0.0.8"}},
		{name: "ReadinessGates", pod: func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/a"}, {ConditionType: "example.com/b"}, {ConditionType: "example.com/c"}}
			p.Status.Conditions = []corev1.PodCondition{
				condition("example.com/a", corev1.ConditionTrue), condition("example.com/b", corev1.ConditionFalse),
			}
			return p
		}, want: map[string]interface{}{"Readiness Gates": "1/3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkCells(t, tt.pod(), tt.want) })
	}
}
