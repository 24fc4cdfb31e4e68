package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// tfRoot is a root module with only built-in features (terraform_data, local-exec), so init
// installs nothing: the tests' CLI configuration forbids any provider installation anyway.
const tfRoot = `
variable "bundle" {
  type = string
}

variable "customer" {
  type    = string
  default = ""
}

variable "fail_message" {
  type    = string
  default = ""
}

variable "sleep" {
  type    = bool
  default = false
}

resource "terraform_data" "release" {
  input = var.bundle
  lifecycle {
    precondition {
      condition     = var.fail_message == ""
      error_message = var.fail_message == "" ? "unused" : var.fail_message
    }
  }
}

# Holds the apply (and so the state lock) until it is killed; writes its PID first.
resource "terraform_data" "sleeper" {
  count = var.sleep ? 1 : 0
  provisioner "local-exec" {
    command = "echo $$ > sleeper.pid.tmp && mv sleeper.pid.tmp sleeper.pid && exec sleep 300"
  }
}

output "bundle" {
  value = terraform_data.release.output
}

output "customer" {
  value = var.customer
}
`

var testBundle = Bundle{Reference: "registry.example.com/shop/bundle", Digest: "sha256:" + strings.Repeat("ab", 32), Version: "1.4.0"}

// noDownloadEnv is the executor environment of the tests: a CLI configuration that installs no
// provider at all.
func noDownloadEnv(t *testing.T) map[string]string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "no-download.tfrc")
	if err := os.WriteFile(cfg, []byte("provider_installation {\n  direct {\n    exclude = [\"*/*/*\"]\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"TF_CLI_CONFIG_FILE": cfg}
}

func newTFRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tfRoot), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newTestTerraform(t *testing.T, s TerraformSettings) *Terraform {
	t.Helper()
	s.Binary = testenv.Terraform(t)
	env := noDownloadEnv(t)
	for k, v := range s.Env {
		env[k] = v
	}
	s.Env = env
	e, err := NewTerraform(s)
	if err != nil {
		t.Fatalf("NewTerraform() error = %v", err)
	}
	return e
}

// stateOutputs reads the outputs of a local state file.
func stateOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Outputs map[string]struct {
			Value any `json:"value"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range st.Outputs {
		out[k] = fmt.Sprint(v.Value)
	}
	return out
}

// TestTerraformApplyPassesPinnedBundle: init, workspace and apply run in the target's dir (a
// relative dir resolved against BaseDir), the bundle variable is the pinned reference, the
// templated vars reach Terraform, and the output is captured.
func TestTerraformApplyPassesPinnedBundle(t *testing.T) {
	dir := newTFRoot(t)
	e := newTestTerraform(t, TerraformSettings{
		Vars:    map[string]string{"customer": "{{.Target.Name}}-{{.Bundle.Version}}"},
		BaseDir: filepath.Dir(dir),
	})
	target := Target{Name: "acme", Dir: filepath.Base(dir), Workspace: "acme"}
	var out bytes.Buffer
	if err := e.Apply(context.Background(), target, testBundle, &out); err != nil {
		t.Fatalf("Apply() error = %v\noutput:\n%s", err, out.String())
	}
	got := stateOutputs(t, filepath.Join(dir, "terraform.tfstate.d", "acme", "terraform.tfstate"))
	if got["bundle"] != testBundle.Pinned() {
		t.Errorf("output bundle = %q, want %q", got["bundle"], testBundle.Pinned())
	}
	if got["customer"] != "acme-1.4.0" {
		t.Errorf("output customer = %q, want %q", got["customer"], "acme-1.4.0")
	}
	for _, want := range []string{
		"init -input=false -no-color",
		"workspace list",
		"workspace new acme",
		"apply -auto-approve -input=false -no-color -var bundle=" + testBundle.Pinned() + " -var customer=acme-1.4.0",
		"Apply complete! Resources: 1 added",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not contain %q:\n%s", want, out.String())
		}
	}

	// A second apply needs no init (.terraform exists) and changes nothing.
	out.Reset()
	if err := e.Apply(context.Background(), target, testBundle, &out); err != nil {
		t.Fatalf("second Apply() error = %v\noutput:\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "$ "+e.binary+" init") || strings.Contains(out.String(), "workspace new") {
		t.Errorf("second Apply() ran init or created the workspace again:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Resources: 0 added, 0 changed, 0 destroyed") {
		t.Errorf("second Apply() changed something:\n%s", out.String())
	}
}

// TestTerraformSharedDirWorkspaces: targets that share one root module directory, each in a
// workspace of its own, apply at once; each workspace's state holds its own target's values.
func TestTerraformSharedDirWorkspaces(t *testing.T) {
	dir := newTFRoot(t)
	e := newTestTerraform(t, TerraformSettings{Vars: map[string]string{"customer": "{{.Target.Name}}"}})
	names := []string{"acme", "globex", "initech"}
	errs := make([]error, len(names))
	outs := make([]bytes.Buffer, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.Apply(context.Background(), Target{Name: name, Dir: dir, Workspace: name}, testBundle, &outs[i])
		}()
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			t.Fatalf("Apply(%s) error = %v\noutput:\n%s", name, errs[i], outs[i].String())
		}
		got := stateOutputs(t, filepath.Join(dir, "terraform.tfstate.d", name, "terraform.tfstate"))
		if got["customer"] != name {
			t.Errorf("workspace %s: output customer = %q, want %q", name, got["customer"], name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); err == nil {
		t.Error("the default workspace has a state: an apply ran outside its target's workspace")
	}
	// A target without a workspace applies in the default one, not in the workspace the last
	// `workspace new` selected in .terraform/environment.
	var out bytes.Buffer
	if err := e.Apply(context.Background(), Target{Name: "umbrella", Dir: dir}, testBundle, &out); err != nil {
		t.Fatalf("Apply(umbrella) error = %v\noutput:\n%s", err, out.String())
	}
	if got := stateOutputs(t, filepath.Join(dir, "terraform.tfstate")); got["customer"] != "umbrella" {
		t.Errorf("default workspace: output customer = %q, want umbrella", got["customer"])
	}
	for _, name := range names {
		if got := stateOutputs(t, filepath.Join(dir, "terraform.tfstate.d", name, "terraform.tfstate")); got["customer"] != name {
			t.Errorf("workspace %s: output customer = %q after the default workspace's apply, want %s", name, got["customer"], name)
		}
	}
}

// TestTerraformFailureClasses: a failed apply carries the class ferry's provider names in its
// diagnostic ("Application NAME: CLASS failure.", as Terraform really prints and wraps it), and
// any other failure is permanent with the error's lines.
func TestTerraformFailureClasses(t *testing.T) {
	e := newTestTerraform(t, TerraformSettings{Vars: map[string]string{"fail_message": "{{index .Target.Labels \"fail\"}}"}})
	tests := []struct {
		name      string
		message   string
		wantClass string
		wantErr   string
	}{
		{
			name:      "ferry class",
			message:   "Sync stuck: no progress for 15s.\n\nApplication shop-a-customer-with-a-rather-long-name: stuck failure.\n\nLast operation message: waiting",
			wantClass: "stuck",
			wantErr:   "stuck failure of Application shop-a-customer-with-a-rather-long-name",
		},
		{
			name:      "other failure",
			message:   "The customer's quota is exhausted.",
			wantClass: "permanent",
			wantErr:   "The customer's quota is exhausted.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := Target{Name: "acme", Dir: newTFRoot(t), Labels: map[string]string{"fail": tt.message}}
			var out bytes.Buffer
			err := e.Apply(context.Background(), target, testBundle, &out)
			t.Logf("Apply() error: %v", err)
			var ce *ClassError
			if !errors.As(err, &ce) {
				t.Fatalf("Apply() error = %v, want a *ClassError\noutput:\n%s", err, out.String())
			}
			if ce.Class != tt.wantClass {
				t.Errorf("Apply() class = %q, want %q (error %v)", ce.Class, tt.wantClass, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Apply() error = %q, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), "Resource precondition failed") {
				t.Errorf("output does not hold Terraform's error:\n%s", out.String())
			}
		})
	}
}

// startSleeper starts an apply that holds the state lock of dir until cancelled, and returns
// once its local-exec command runs, with that command's PID and a function that cancels the
// apply and returns its error.
func startSleeper(t *testing.T, e *Terraform, target Target) (pid int, out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- e.Apply(ctx, target, testBundle, out) }()
	pidFile := filepath.Join(target.Dir, "sleeper.pid")
	for {
		raw, err := os.ReadFile(pidFile)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("sleeping Apply() ended early: %v\noutput:\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return pid, out, stop
}

func sleeperTarget(t *testing.T) Target {
	return Target{Name: "acme", Dir: newTFRoot(t)}
}

// TestTerraformStateLockIsConflict: an apply while another run holds the state lock fails with
// class conflict.
func TestTerraformStateLockIsConflict(t *testing.T) {
	sleepy := newTestTerraform(t, TerraformSettings{Vars: map[string]string{"sleep": "true"}, GracePeriod: 5 * time.Second})
	target := sleeperTarget(t)
	_, _, stop := startSleeper(t, sleepy, target)

	e := newTestTerraform(t, TerraformSettings{})
	var out bytes.Buffer
	err := e.Apply(context.Background(), target, testBundle, &out)
	t.Logf("Apply() error: %v", err)
	var ce *ClassError
	if !errors.As(err, &ce) || ce.Class != "conflict" {
		t.Fatalf("Apply() error = %v, want class conflict\noutput:\n%s", err, out.String())
	}
	if !strings.Contains(err.Error(), "state is locked") {
		t.Errorf("Apply() error = %q, want it to say the state is locked", err)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Apply() error = %v, want context.Canceled", err)
	}
}

// TestTerraformCancelKillsProcessGroup: cancelling Apply interrupts Terraform and everything it
// started (the local-exec command, a grandchild), and Apply returns the context's error.
func TestTerraformCancelKillsProcessGroup(t *testing.T) {
	e := newTestTerraform(t, TerraformSettings{Vars: map[string]string{"sleep": "true"}, GracePeriod: 5 * time.Second})
	target := sleeperTarget(t)
	pid, out, stop := startSleeper(t, e, target)
	if !processAlive(pid) {
		t.Fatalf("the local-exec command (PID %d) is not running", pid)
	}
	err := stop()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply() error = %v, want context.Canceled\noutput:\n%s", err, out.String())
	}
	var ce *ClassError
	if errors.As(err, &ce) {
		t.Errorf("Apply() error = %v has class %q, want no class (the rollout was cancelled)", err, ce.Class)
	}
	// The command may still be reaped by init; wait for that, bounded.
	for i := 0; processAlive(pid); i++ {
		if i == 200 {
			t.Fatalf("the local-exec command (PID %d) is still running after the apply was cancelled", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "apply -auto-approve") {
		t.Errorf("output does not show the apply:\n%s", out.String())
	}
}

// processAlive reports whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClassifyTerraformOutput: the classification of output as Terraform prints it, framed or
// plain, wrapped or not.
func TestClassifyTerraformOutput(t *testing.T) {
	exitErr := exitError(t)
	tests := []struct {
		name   string
		output string
		want   string
	}{
		{"framed ferry class", "╷\n│ Error: Sync needs approval: Argo CD waits for a pruning confirmation\n│ \n│   with ferry_application.shop,\n│ \n│ Application shop-acme: approval\n│ failure.\n╵\n", "approval"},
		{"plain ferry class", "Error: Sync failed transiently: registry unreachable\n\nApplication shop-acme: transient failure.\n", "transient"},
		{"state lock", "╷\n│ Error: Error acquiring the state lock\n│ \n│ Error message: resource temporarily unavailable\n╵\n", "conflict"},
		{"unknown", "╷\n│ Error: Unsupported argument\n╵\n", "permanent"},
		{"backend unreachable", "╷\n│ Error: error loading state: Get \"https://state.example.com/acme\": dial tcp 10.0.0.1:443: i/o\n│ timeout\n╵\n", "transient"},
		{"network words in an earlier diagnostic", "Error: Get \"x\": connection refused\n\nError: Invalid value for variable\n", "permanent"},
		{"unclassified ferry error", "╷\n│ Error: Unable to Sync Application\n│ \n│ Application shop-acme.\n╵\n", "permanent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classifyTerraform("acme", "apply", exitErr, tt.output)
			var ce *ClassError
			if !errors.As(err, &ce) || ce.Class != tt.want {
				t.Errorf("classifyTerraform() = %v, want class %s", err, tt.want)
			}
		})
	}
}

// exitError returns the *exec.ExitError of a command that exits 1.
func exitError(t *testing.T) error {
	t.Helper()
	err := exec.Command("sh", "-c", "exit 1").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("sh -c 'exit 1': %v", err)
	}
	return err
}

// TestTerraformSettingsFromYAML: the factory reads fleet.yaml's executor settings, resolves
// relative dirs against fleet.yaml's directory, and names unknown fields and bad values.
func TestTerraformSettingsFromYAML(t *testing.T) {
	node := func(src string) *yaml.Node {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Content[0]
	}
	ex, err := NewExecutor("terraform", node("binary: tofu\nvariable: release\nvars: {customer: '{{.Target.Name}}'}\nextraArgs: [-parallelism=4]\ngracePeriod: 10s\ninit: always\n"), ExecutorEnv{File: "fleet.yaml", Dir: "/fleet"})
	if err != nil {
		t.Fatalf("NewExecutor() error = %v", err)
	}
	tf := ex.(*Terraform)
	if tf.binary != "tofu" || tf.variable != "release" || tf.grace != 10*time.Second || tf.init != InitAlways || tf.baseDir != "/fleet" || len(tf.extraArgs) != 1 {
		t.Errorf("NewExecutor() = %+v", tf)
	}
	for _, tt := range []struct{ src, want string }{
		{"binray: tofu\n", "binray"},
		{"gracePeriod: soon\n", "gracePeriod"},
		{"init: sometimes\n", "init"},
		{"variable: 'not a name'\n", "variable"},
	} {
		_, err := NewExecutor("terraform", node(tt.src), ExecutorEnv{File: "fleet.yaml"})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "fleet.yaml") {
			t.Errorf("NewExecutor(%q) error = %v, want one naming fleet.yaml and %s", tt.src, err, tt.want)
		}
	}
}

// TestTerraformSerialInit: with a shared plugin cache (TF_PLUGIN_CACHE_DIR), concurrent applies
// run their inits one at a time; without one, inits are not serialised. The terraform binary is
// a script that records overlapping inits.
func TestTerraformSerialInit(t *testing.T) {
	fake := t.TempDir()
	bin := filepath.Join(fake, "terraform")
	script := `#!/bin/sh
case "$1" in
init)
  mkdir "$FAKE_DIR/init.lock" 2>/dev/null || echo overlap >> "$FAKE_DIR/overlaps"
  sleep 0.2
  rmdir "$FAKE_DIR/init.lock" 2>/dev/null
  mkdir -p .terraform
  echo "init with cache $TF_PLUGIN_CACHE_DIR" ;;
apply) echo "apply $*" ;;
esac
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := NewTerraform(TerraformSettings{Binary: bin, Env: map[string]string{"FAKE_DIR": fake, "TF_PLUGIN_CACHE_DIR": filepath.Join(fake, "cache")}})
	if err != nil {
		t.Fatal(err)
	}
	if !e.serialInit {
		t.Fatal("NewTerraform() with TF_PLUGIN_CACHE_DIR in env: serialInit = false, want true")
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			errs[i] = e.Apply(context.Background(), Target{Name: fmt.Sprintf("c%d", i), Dir: t.TempDir()}, testBundle, &out)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply(c%d) error = %v", i, err)
		}
	}
	if raw, err := os.ReadFile(filepath.Join(fake, "overlaps")); err == nil {
		t.Errorf("inits overlapped with a shared plugin cache: %q", raw)
	}
	if os.Getenv("TF_PLUGIN_CACHE_DIR") == "" {
		plain, err := NewTerraform(TerraformSettings{Binary: bin})
		if err != nil {
			t.Fatal(err)
		}
		if plain.serialInit {
			t.Error("NewTerraform() without a plugin cache: serialInit = true, want false")
		}
	}
}
