package storage_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

// postgresPod is a PostgreSQL pod whose data directory is volume "data"
// (declared by the caller's manifest after this text).
func postgresPod(name, volume string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, labels: {app: db}}
spec:
  securityContext: {runAsUser: 999, runAsGroup: 999, fsGroup: 999}
  terminationGracePeriodSeconds: 30
  containers:
  - name: db
    image: ` + postgresImage + `
    imagePullPolicy: Never
    volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
    readinessProbe:
      exec: {command: [/postgres, psql, -c, "select 1"]}
      periodSeconds: 1
  volumes:
  - name: data
` + volume
}

// TestPostgresImage: the image the storage tests run PostgreSQL from
// starts, initialises its data directory and answers queries.
func TestPostgresImage(t *testing.T) {
	framework.RequireNodeAgent(t)
	s := startNode(t, framework.PostgresImage(t, postgresImage))
	ns := framework.NewNamespace(t, s.Clientset(), "pg")
	s.MustKubectlStdin(t, postgresPod("db", "    emptyDir: {}\n"), "-n", ns, "apply", "-f", "-")
	waitPod(t, s, ns, "db")
	psql(t, s, ns, "db", "create table notes (id int primary key, body text)")
	psql(t, s, ns, "db", "insert into notes values (1, 'kept')")
	if got := psql(t, s, ns, "db", "select body from notes where id = 1"); got != "kept" {
		t.Fatalf("select = %q, want kept", got)
	}
}
