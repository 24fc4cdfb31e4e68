package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stateFile is the file in the state directory that Up writes and Down reads.
const stateFile = "state.json"

// StateDir returns the directory of the long-lived environment of Up and
// Down: $FERRY_TESTENV_DIR if set, else $XDG_RUNTIME_DIR/ferry-testenv, else
// /tmp/ferry-testenv.
func StateDir() string {
	if dir := os.Getenv("FERRY_TESTENV_DIR"); dir != "" {
		return dir
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "ferry-testenv")
	}
	return filepath.Join(os.TempDir(), "ferry-testenv")
}

// ProcessRecord identifies one process of a long-lived environment.
type ProcessRecord struct {
	// Name is the component, e.g. "kube-apiserver".
	Name string `json:"name"`
	// PID is its process id, which is also its process group and session id.
	PID int `json:"pid"`
	// StartTime is field 22 of /proc/PID/stat at start, so a recycled PID
	// is never mistaken for it.
	StartTime string `json:"startTime"`
}

// UpState describes a long-lived environment started by Up.
type UpState struct {
	// Dir is the state directory; every file of the environment is in it.
	Dir string `json:"dir"`
	// Kubeconfig is the path of the cluster's kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// ClusterServer is the API server's URL (also Argo CD's destination server).
	ClusterServer string `json:"clusterServer"`
	// ClusterCAFile is the PEM file of the CA of the API server's certificate.
	ClusterCAFile string `json:"clusterCAFile"`
	// ClusterTokenFile holds the cluster-admin bearer token of the
	// kubeconfig (mode 0600), e.g. for a ferry_environment's cluster block.
	ClusterTokenFile string `json:"clusterTokenFile"`
	// RegistryAddr is the registry's "127.0.0.1:PORT" (plain HTTP, no auth
	// unless Options.RegistryOptions.Auth).
	RegistryAddr string `json:"registryAddr"`
	// RegistryUsername is the registry's htpasswd user, set when it has auth.
	RegistryUsername string `json:"registryUsername,omitempty"`
	// RegistryPassword is RegistryUsername's password.
	RegistryPassword string `json:"registryPassword,omitempty"`
	// ArgoCDNamespace is Argo CD's control-plane namespace.
	ArgoCDNamespace string `json:"argocdNamespace"`
	// Processes lists every process started, in start order.
	Processes []ProcessRecord `json:"processes"`
}

// Exports returns the state as shell export lines: KUBECONFIG,
// FERRY_TESTENV_DIR, FERRY_TESTENV_REGISTRY, FERRY_TESTENV_CLUSTER_SERVER,
// FERRY_TESTENV_CLUSTER_CA_FILE, FERRY_TESTENV_CLUSTER_TOKEN_FILE,
// FERRY_TESTENV_ARGOCD_NAMESPACE (and the registry credentials, if any).
func (s *UpState) Exports() string {
	var b strings.Builder
	export := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
		}
	}
	export("KUBECONFIG", s.Kubeconfig)
	export("FERRY_TESTENV_DIR", s.Dir)
	export("FERRY_TESTENV_REGISTRY", s.RegistryAddr)
	export("FERRY_TESTENV_REGISTRY_USERNAME", s.RegistryUsername)
	export("FERRY_TESTENV_REGISTRY_PASSWORD", s.RegistryPassword)
	export("FERRY_TESTENV_CLUSTER_SERVER", s.ClusterServer)
	export("FERRY_TESTENV_CLUSTER_CA_FILE", s.ClusterCAFile)
	export("FERRY_TESTENV_CLUSTER_TOKEN_FILE", s.ClusterTokenFile)
	export("FERRY_TESTENV_ARGOCD_NAMESPACE", s.ArgoCDNamespace)
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Up starts the environment of opts in dir with processes that outlive the
// calling process (each in a session of its own, without a parent-death
// signal), records them in dir/state.json and returns the state. Down stops
// them. Up fails if dir already holds a live environment; a dead one is
// cleaned up first.
func Up(dir string, opts Options) (*UpState, error) {
	if old, err := ReadUpState(dir); err == nil {
		if live := old.live(); len(live) > 0 {
			return nil, fmt.Errorf("an environment is already up in %s (%s); run down first", dir, strings.Join(live, ", "))
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove the stale environment in %s: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve state directory: %w", err)
	}
	e, err := startEnv(abs, opts, launchMode{detached: true}, false)
	if err != nil {
		return nil, err
	}
	s := &UpState{Dir: abs}
	var errs []error
	if e.Cluster != nil {
		s.Kubeconfig, s.ClusterServer = e.Cluster.Kubeconfig, e.Cluster.Host
		s.ClusterCAFile, s.ClusterTokenFile = filepath.Join(abs, "cluster", "ca.pem"), filepath.Join(abs, "cluster", "token")
		errs = append(errs, os.WriteFile(s.ClusterCAFile, e.Cluster.CAData, 0o644), os.WriteFile(s.ClusterTokenFile, []byte(e.Cluster.Token), 0o600))
	}
	if e.Registry != nil {
		s.RegistryAddr, s.RegistryUsername, s.RegistryPassword = e.Registry.Addr, e.Registry.Username, e.Registry.Password
	}
	if e.ArgoCD != nil {
		s.ArgoCDNamespace = e.ArgoCD.Namespace
	}
	ps, _ := e.procs()
	for _, p := range ps {
		s.Processes = append(s.Processes, ProcessRecord{Name: p.name, PID: p.pid, StartTime: p.startTime})
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(abs, stateFile), append(b, '\n'), 0o600)
	}
	if err = errors.Join(append(errs, err)...); err != nil {
		return nil, errors.Join(fmt.Errorf("write state: %w", err), e.Stop())
	}
	return s, nil
}

// ReadUpState reads the state Up recorded in dir; the error wraps
// fs.ErrNotExist when there is none.
func ReadUpState(dir string) (*UpState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("read environment state: %w", err)
	}
	var s UpState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// Live returns the recorded processes that are still running.
func (s *UpState) Live() []ProcessRecord {
	var out []ProcessRecord
	for _, p := range s.Processes {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

func (s *UpState) live() []string {
	var out []string
	for _, p := range s.Live() {
		out = append(out, fmt.Sprintf("%s pid %d", p.Name, p.PID))
	}
	return out
}

// alive reports whether the recorded process (not a recycled PID) is still
// running; a zombie waiting for its new parent to reap it is not.
func (p ProcessRecord) alive() bool {
	st, err := procStartTime(p.PID)
	if err != nil || (p.StartTime != "" && st != p.StartTime) {
		return false
	}
	return procState(p.PID) != "Z"
}

// Down stops every process recorded in dir (SIGKILL to its process group,
// then waits until it and its group are gone) and removes dir. Without a
// recorded environment it does nothing.
func Down(dir string) error {
	s, err := ReadUpState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for i := len(s.Processes) - 1; i >= 0; i-- {
		if err := s.Processes[i].kill(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // keep the state for another try
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// kill kills p's process group and waits until no member is left running.
func (p ProcessRecord) kill(timeout time.Duration) error {
	if !p.alive() {
		// The leader is gone, but members of its group may not be.
		if len(liveMembers(p.PID)) == 0 {
			return nil
		}
	}
	if err := syscall.Kill(-p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	deadline := time.Now().Add(timeout)
	for p.alive() || len(liveMembers(p.PID)) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) still running %v after SIGKILL", p.Name, p.PID, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// liveMembers lists the members of process group pgid that are not zombies.
func liveMembers(pgid int) []int {
	var out []int
	for _, pid := range groupMembers(pgid) {
		if procState(pid) != "Z" {
			out = append(out, pid)
		}
	}
	return out
}
