package server

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/replicaset"
)

// startReplicaSet starts the ReplicaSet controller with upstream's 5
// workers (--concurrent-replicaset-syncs).
func startReplicaSet(ctx context.Context, c *controller.Context) error {
	rc, err := replicaset.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "replicaset-controller"))
	if err != nil {
		return err
	}
	go rc.Run(ctx, 5)
	return nil
}

// workloadEventRecorder records Events as component, until ctx is done.
func workloadEventRecorder(ctx context.Context, client kubernetes.Interface, component string) record.EventRecorder {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	go func() {
		<-ctx.Done()
		b.Shutdown()
	}()
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}
