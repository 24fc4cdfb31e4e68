// Command testenv runs ferry's test environment for people: a registry, a
// Kubernetes control plane and Argo CD, as detached processes that outlive
// the command.
//
//	go run ./internal/testenv/cmd/testenv up     # start; prints the state and export lines
//	eval "$(go run ./internal/testenv/cmd/testenv env)"
//	go run ./internal/testenv/cmd/testenv status # which processes are running
//	go run ./internal/testenv/cmd/testenv down   # stop everything and remove the state
//
// The state (process ids, kubeconfig, logs, data) lives in
// $FERRY_TESTENV_DIR, else $XDG_RUNTIME_DIR/ferry-testenv, else
// /tmp/ferry-testenv. The binaries come from the tool cache (make tools).
// `make testenv-up` and `make testenv-down` wrap up and down.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: testenv up [-argocd=false] [-kubelet=false] [-registry-auth]
                                                     start registry, cluster and Argo CD, detached
       testenv env                                   print the export lines of the running environment
       testenv status                                list the environment's processes
       testenv down                                  stop every process and remove the state

State directory: $FERRY_TESTENV_DIR, else $XDG_RUNTIME_DIR/ferry-testenv, else /tmp/ferry-testenv.
`)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("missing command")
	}
	dir := testenv.StateDir()
	switch args[0] {
	case "up":
		flags := flag.NewFlagSet("up", flag.ContinueOnError)
		flags.SetOutput(stderr)
		argocd := flags.Bool("argocd", true, "start Argo CD")
		auth := flags.Bool("registry-auth", false, "give the registry htpasswd auth")
		kubelet := flags.Bool("kubelet", true, "run the simulated kubelet, so Pods run and Deployments become Available")
		if err := flags.Parse(args[1:]); err != nil {
			return err
		}
		start := time.Now()
		s, err := testenv.Up(dir, testenv.Options{
			Registry:        true,
			RegistryOptions: testenv.RegistryOptions{Auth: *auth},
			Cluster:         true,
			ClusterOptions:  testenv.ClusterOptions{SimulatedKubelet: *kubelet},
			ArgoCD:          *argocd,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "# ferry test environment up in %.1fs; stop it with: make testenv-down\n", time.Since(start).Seconds())
		printState(stdout, s)
		return nil
	case "env":
		s, err := readState(dir)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, s.Exports())
		return nil
	case "status":
		s, err := readState(dir)
		if err != nil {
			return err
		}
		printState(stdout, s)
		live := map[int]bool{}
		for _, p := range s.Live() {
			live[p.PID] = true
		}
		for _, p := range s.Processes {
			state := "stopped"
			if live[p.PID] {
				state = "running"
			}
			fmt.Fprintf(stdout, "# %-32s pid %-8d %s\n", p.Name, p.PID, state)
		}
		return nil
	case "down":
		s, err := testenv.ReadUpState(dir)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "testenv: no environment in %s\n", dir)
			return nil
		}
		if err != nil {
			return err
		}
		if err := testenv.Down(dir); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "testenv: stopped %d processes and removed %s\n", len(s.Processes), dir)
		return nil
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func readState(dir string) (*testenv.UpState, error) {
	s, err := testenv.ReadUpState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no environment in %s; start one with: make testenv-up", dir)
	}
	return s, err
}

// printState prints the state as shell comments followed by export lines, so
// the output can be passed to eval.
func printState(w io.Writer, s *testenv.UpState) {
	fmt.Fprintf(w, "# state:      %s\n", s.Dir)
	fmt.Fprintf(w, "# kubeconfig: %s\n", s.Kubeconfig)
	fmt.Fprintf(w, "# cluster:    %s\n", s.ClusterServer)
	fmt.Fprintf(w, "# registry:   %s (plain HTTP)\n", s.RegistryAddr)
	if s.ArgoCDNamespace != "" {
		fmt.Fprintf(w, "# argocd:     namespace %s, destination server %s\n", s.ArgoCDNamespace, s.ClusterServer)
	}
	fmt.Fprint(w, s.Exports())
}
