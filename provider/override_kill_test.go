package provider

import (
	"bytes"
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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestAccApplicationOverrideKilled: `terraform apply` runs an override through a deny window with
// the built provider binary, and the provider is killed with SIGKILL while the override's
// operation runs. The operation finishes in the windowless override project, which is where the
// kill leaves the Application. Then either the next `terraform plan` repairs that (it warns what
// it repaired, the Application is back in its environment's project, the override project is
// gone), or `terraform destroy -refresh=false` — no refresh, so no repair — removes the
// Application, the environment's project and its override project.
func TestAccApplicationOverrideKilled(t *testing.T) {
	e := sharedEnv.Get(t)
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set; run through make test (tests never download Terraform)")
	}
	built := filepath.Join(t.TempDir(), "terraform-provider-ferry")
	if out, err := exec.Command("go", "build", "-o", built, "../cmd/terraform-provider-ferry").CombinedOutput(); err != nil {
		t.Fatalf("build provider: %v\n%s", err, out)
	}
	provider, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	projects := e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace)
	exists := func(project string) bool {
		_, err := projects.Get(context.Background(), project, metav1.GetOptions{})
		return err == nil
	}
	for _, after := range []string{"plan", "destroy"} {
		t.Run(after, func(t *testing.T) {
			t.Parallel()
			env := uniqueName(t, "env")
			app := uniqueName(t, "app")
			// Each subtest runs its own copy of the binary: the kill finds its processes by path.
			bin := t.TempDir()
			providerBin := filepath.Join(bin, "terraform-provider-ferry")
			if err := os.WriteFile(providerBin, provider, 0o755); err != nil {
				t.Fatal(err)
			}
			terraform := killedOverride(t, e, tf, bin, env, app)

			switch after {
			case "plan":
				out, err := terraform("plan").CombinedOutput()
				if err != nil {
					t.Fatalf("plan after the kill: %v\n%s", err, out)
				}
				if text := strings.Join(strings.Fields(string(out)), " "); !strings.Contains(text, "Interrupted Override Repaired") || !strings.Contains(text, "moved it back to project "+env) {
					t.Errorf("plan after the kill does not warn what it repaired:\n%s", out)
				}
				if p := str(appLive(t, e, app), "spec", "project"); p != env {
					t.Errorf("application in project %q after the plan, want %q", p, env)
				}
				if exists(argocd.OverrideProjectName(env)) {
					t.Errorf("override project %s still exists after the repair", argocd.OverrideProjectName(env))
				}
			case "destroy":
				out, err := terraform("destroy", "-auto-approve", "-refresh=false").CombinedOutput()
				if err != nil {
					t.Fatalf("destroy after the kill: %v\n%s", err, out)
				}
				for _, p := range []string{env, argocd.OverrideProjectName(env)} {
					if exists(p) {
						t.Errorf("project %s still exists after terraform destroy", p)
					}
				}
				if _, err := e.Cluster.Dynamic(t).Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), app, metav1.GetOptions{}); err == nil {
					t.Errorf("application %s still exists after terraform destroy", app)
				}
			}
		})
	}
}

// killedOverride applies an environment and an application with the provider binary in bin, then
// applies an override of a slow bundle through a deny window and kills the provider with SIGKILL
// while the override's operation runs; it returns once that operation has ended (in the override
// project), with a function that runs terraform in the same directory on the override's config.
func killedOverride(t *testing.T, e *testenv.Env, tf, bin, env, app string) func(args ...string) *exec.Cmd {
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v1")})
	// A Deployment whose Pod becomes ready 30 s after it starts, and a later sync wave: the
	// override's operation waits for the Deployment before the wave, long enough to kill the
	// provider in the middle of it.
	slow := pushRelease(t, e, "apps/"+app, map[string]string{"later.yaml": laterWave, "deploy.yaml": testenv.PinnedDeployment("api",
		"registry.example.com/shop/api@sha256:3333333333333333333333333333333333333333333333333333333333333333",
		`readinessProbe: {exec: {command: ["true"]}, initialDelaySeconds: 30}`)})
	deny := "deployment_window {\n    kind        = \"deny\"\n    schedule    = \"* * * * *\"\n    duration    = \"1h\"\n    description = \"kill freeze\"\n  }"
	override := "window_policy   = \"override\"\n  override_reason = \"INC-45 killed\""

	rc := filepath.Join(t.TempDir(), "dev.tfrc")
	writeFile(t, rc, "provider_installation {\n  dev_overrides {\n    \""+providerHost()+"/ferry-dev/ferry\" = \""+bin+"\"\n  }\n  direct {}\n}\n")
	work := t.TempDir()
	terraform := func(config string, args ...string) *exec.Cmd {
		writeFile(t, filepath.Join(work, "main.tf"), "terraform {\n  required_providers {\n    ferry = { source = \"ferry-dev/ferry\" }\n  }\n}\n"+config)
		cmd := exec.Command(tf, append(args, "-no-color", "-input=false")...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
		return cmd
	}

	if out, err := terraform(classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", ""), "apply", "-auto-approve").CombinedOutput(); err != nil {
		t.Fatalf("first apply: %v\n%s", err, out)
	}
	overrideConfig := classConfig(testEnv{e: e}, env, app, slow.PinnedReference, deny, override)
	apply := terraform(overrideConfig, "apply", "-auto-approve")
	var out bytes.Buffer
	apply.Stdout, apply.Stderr = &out, &out
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- apply.Wait() }()
	running := e.ArgoCD.WaitApplication(t, app, func(a *unstructured.Unstructured) bool {
		op := argocd.StatusOf(a).LastOperation
		return argocd.InOverrideProject(a) && op != nil && op.Phase == "Running"
	}, 3*time.Minute)
	killed := killProcesses(t, filepath.Join(bin, "terraform-provider-ferry"))
	if killed == 0 {
		t.Fatalf("no provider process to kill; apply output:\n%s", out.String())
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("apply succeeded although its provider was killed:\n%s", out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("terraform apply did not end after its provider was killed:\n%s", out.String())
	}
	if op := argocd.StatusOf(appLive(t, e, app)).LastOperation; op == nil || op.Phase != "Running" {
		t.Fatalf("operation %+v after the kill, want it still running", op)
	}
	t.Logf("killed the provider while operation %s ran", argocd.StatusOf(running).LastOperation.RequestID)

	// The operation runs on to the end in the override project: the bypass a kill leaves.
	ended := e.ArgoCD.WaitApplication(t, app, func(a *unstructured.Unstructured) bool {
		op := argocd.StatusOf(a).LastOperation
		return op != nil && op.Phase != "Running" && op.Phase != "Terminating"
	}, 3*time.Minute)
	if !argocd.InOverrideProject(ended) {
		t.Fatalf("application in project %q after the killed override; the test needs the leftover it repairs", str(ended, "spec", "project"))
	}
	return func(args ...string) *exec.Cmd { return terraform(overrideConfig, args...) }
}

// killProcesses sends SIGKILL to every process running the executable path and returns how many.
func killProcesses(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	n := 0
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		if err != nil || exe != path {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			n++
		}
	}
	return n
}

func str(obj *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(obj.Object, fields...)
	return s
}

// providerHost is the registry host of the provider's address for the engine under test:
// TF_ACC_PROVIDER_HOST (registry.opentofu.org when the acceptance tests run under OpenTofu), else
// Terraform's registry.terraform.io.
func providerHost() string {
	if h := os.Getenv("TF_ACC_PROVIDER_HOST"); h != "" {
		return h
	}
	return "registry.terraform.io"
}
