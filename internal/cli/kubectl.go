package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

const (
	// kubectlBinary is the kubectl `havre kubectl` runs (cmd/havre-kubectl),
	// looked up next to the havre binary, then in PATH.
	kubectlBinary = "havre-kubectl"
	// defaultDataDir is the server's default --data-dir.
	defaultDataDir = "/var/lib/havre"
	// envDataDir overrides defaultDataDir for `havre kubectl`.
	envDataDir = "HAVRE_DATA_DIR"
	// adminKubeconfig is the file the server writes into its data dir.
	adminKubeconfig = "admin.kubeconfig"
)

// newKubectlCommand returns `havre kubectl`: the upstream kubectl with the
// local server's admin kubeconfig, as k3s does.
//
// kubectl is a separate binary (havre-kubectl) that this command execs, not
// a part of havre: linking kubectl's packages into havre would run their
// package initialisation on every `havre server` start and keep it in the
// server's memory.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [--data-dir DIR] [kubectl flags] [command]",
		Short: "Run kubectl against the local Havre server as its admin",
		Long: `Run kubectl (the upstream kubectl of the Kubernetes version Havre is built
against, installed as havre-kubectl next to havre) with the admin kubeconfig
of the local server.

The kubeconfig is, in order:
  --data-dir DIR (before kubectl's own flags)  DIR/admin.kubeconfig
  KUBECONFIG                                   as kubectl reads it
  $HAVRE_DATA_DIR                              $HAVRE_DATA_DIR/admin.kubeconfig
  ` + defaultDataDir + `/admin.kubeconfig, if it exists; else kubectl's default (~/.kube/config)
kubectl's --kubeconfig flag overrides all of them.`,
		Example: `  havre kubectl get namespaces
  havre kubectl --data-dir /tmp/havre get pods -A
  havre kubectl --help     (kubectl's help; this one is havre help kubectl)`,
		// Every argument is kubectl's, including -h/--help.
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runKubectl(args)
		},
	}
}

// runKubectl replaces the process with havre-kubectl. It returns only if that
// fails.
func runKubectl(args []string) error {
	args, dataDir, err := cutDataDir(args)
	if err != nil {
		return err
	}
	env, err := kubectlEnv(os.Environ(), dataDir)
	if err != nil {
		return err
	}
	bin, err := findKubectl()
	if err != nil {
		return err
	}
	// argv[0] "kubectl": kubectl's user agent, and so the field manager
	// the server records for requests without one, is derived from it.
	argv := append([]string{"kubectl"}, args...)
	err = syscall.Exec(bin, argv, env)
	return fmt.Errorf("running %s: %w", bin, err)
}

// cutDataDir removes leading --data-dir DIR / --data-dir=DIR arguments and
// returns the remaining ones and DIR ("" when absent; the last one wins).
func cutDataDir(args []string) (rest []string, dataDir string, err error) {
	for len(args) > 0 {
		if v, ok := strings.CutPrefix(args[0], "--data-dir="); ok {
			dataDir, args = v, args[1:]
		} else if args[0] == "--data-dir" {
			if len(args) < 2 {
				return nil, "", errors.New("flag needs an argument: --data-dir")
			}
			dataDir, args = args[1], args[2:]
		} else {
			break
		}
		if dataDir == "" {
			return nil, "", errors.New("--data-dir must not be empty")
		}
	}
	return args, dataDir, nil
}

// kubectlEnv returns env with KUBECONFIG set to the admin kubeconfig of the
// data dir, unless KUBECONFIG is set and no --data-dir was given, or no data
// dir was asked for and the default one has no kubeconfig.
func kubectlEnv(env []string, flagDataDir string) ([]string, error) {
	lookup := func(key string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], key+"="); ok {
				return v
			}
		}
		return ""
	}
	dir, explicit := flagDataDir, flagDataDir != ""
	if !explicit {
		if lookup("KUBECONFIG") != "" {
			return env, nil
		}
		dir = lookup(envDataDir)
		explicit = dir != ""
	}
	if !explicit {
		dir = defaultDataDir
	}
	path, err := filepath.Abs(filepath.Join(dir, adminKubeconfig))
	if err != nil {
		return nil, err
	}
	// A data dir that was asked for is used even if it has no kubeconfig
	// (`kubectl version --client` needs none), with a warning: kubectl
	// would only say that localhost:8080 refuses connections. The default
	// one is used only if it has one (or cannot be looked at: kubectl
	// reports the permission error).
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if !explicit {
			return env, nil
		}
		fmt.Fprintf(os.Stderr, "havre kubectl: warning: no admin kubeconfig at %s: is %s the data dir of a server?\n", path, dir)
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			out = append(out, kv)
		}
	}
	return append(out, "KUBECONFIG="+path), nil
}

// findKubectl returns the path of havre-kubectl: next to the running havre
// binary (its real path, then the path it was started by), else in PATH.
func findKubectl() (string, error) {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	if strings.ContainsRune(os.Args[0], filepath.Separator) {
		dirs = append(dirs, filepath.Dir(os.Args[0]))
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, kubectlBinary)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	path, err := exec.LookPath(kubectlBinary)
	if err != nil {
		return "", fmt.Errorf("%s is neither next to havre (%s) nor in PATH (make build builds it into bin/): %w",
			kubectlBinary, strings.Join(dirs, ", "), err)
	}
	return path, nil
}
