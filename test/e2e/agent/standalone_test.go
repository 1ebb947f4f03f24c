package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// TestStandaloneAgentJoinsWithTheToken runs an API-only server (assigning
// pod CIDRs since --cluster-cidr is given) and a separate `havre agent`
// process that joins it with the join token, then runs a pod on it.
func TestStandaloneAgentJoinsWithTheToken(t *testing.T) {
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/web", webImage)
	clusterCIDR, bridge := framework.PodNetwork(t)
	s := framework.StartServer(t, framework.WithArgs("--cluster-cidr", clusterCIDR))

	agentDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	havre := framework.Havre(t)
	streamingPort, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(havre, "agent",
		"--streaming-port", strconv.Itoa(streamingPort),
		"--server", s.URL(""),
		"--token-file", filepath.Join(s.DataDir(), "server", "token"),
		"--ca-file", filepath.Join(s.DataDir(), "tls", "ca.crt"),
		"--data-dir", agentDir,
		"--node-name", nodeName,
		"--cluster-cidr", clusterCIDR,
		"--cni-bridge", bridge,
		// One VXLAN port per namespace: other tests' agents share this one.
		"--pod-network-backend", "direct")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Cleanups run last first: stop the agent, then remove its pods.
	t.Cleanup(func() {
		out, err := exec.Command(havre, "agent", "reset", "--data-dir", agentDir).CombinedOutput()
		if err != nil {
			t.Errorf("havre agent reset: %v\n%s", err, out)
		}
		// Reset removed the node's network: its bridge and nftables tables.
		if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err == nil {
			t.Errorf("bridge %s left after reset:\n%s", bridge, out)
		}
		// (the proxy's table and its shards, the masquerading: all named
		// after the bridge)
		if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), " "+bridge) {
			t.Errorf("nftables tables of %s left after reset (%v):\n%s", bridge, err, out)
		}
	})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the agent did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the agent did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", data)
		}
	})

	waitNodeReady(t, s)
	out, err := exec.Command(havre, "image", "import", "--data-dir", agentDir, archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported "+webImage) {
		t.Fatalf("havre image import: %v\n%s", err, out)
	}
	out, err = exec.Command(havre, "image", "ls", "--data-dir", agentDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), webImage) || !strings.Contains(string(out), "havre.local/pause:") {
		t.Fatalf("havre image ls: %v\n%s", err, out)
	}

	ns := "standalone"
	createNamespace(t, s, ns)
	s.MustKubectl(t, "-n", ns, "run", "web", "--image="+webImage, "--overrides="+overrides(nil))
	pod := waitPod(t, s, ns, "web", 60*time.Second, "Running and Ready", running)
	if body := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/", 20*time.Second); body != "web web\n" {
		t.Errorf("GET / = %q", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	node, err := s.Clientset().CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := node.Labels["node-role.kubernetes.io/control-plane"]; ok {
		t.Errorf("a joined agent's node has the control-plane role: %v", node.Labels)
	}
	if err := s.Clientset().CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 40*time.Second, func() (bool, error) {
		_, err := getPod(t, s, ns, "web")
		return isNotFound(err), nil
	}, "pod deleted")
}
