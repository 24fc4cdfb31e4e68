package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// denyUntil is a daily deny window that began before now and ends at end (a schedule has whole
// minutes, a duration whole seconds).
func denyUntil(now, end time.Time) window.Spec {
	start := now.UTC().Truncate(time.Minute).Add(-time.Minute)
	return window.Spec{Kind: "deny", Schedule: fmt.Sprintf("%d %d * * *", start.Minute(), start.Hour()),
		Duration: fmt.Sprintf("%ds", int(math.Ceil(end.Sub(start).Seconds()))), TimeZone: "UTC"}
}

// tfCustomerRoot is the customer root module of TestCLIFleetRolloutTerraform: one directory, a
// workspace per customer, the customer and the Application's source path as variables.
const tfCustomerRoot = `terraform {
  required_providers {
    ferry = {
      source = "ferry-dev/ferry"
    }
  }
}

variable "bundle" {
  type = string
}

variable "customer" {
  type = string
}

variable "path" {
  type    = string
  default = "."
}

resource "ferry_application" "app" {
  name        = var.customer
  environment = var.customer
  bundle      = var.bundle
  namespace   = var.customer
  path        = var.path
  sync_options {
    create_namespace = true
  }
  timeouts {
    create = "3m"
    update = "3m"
  }
}
`

// TestCLIFleetRolloutTerraform rolls a bundle out to 20 customer environments with `ferry fleet
// rollout` and the terraform executor: real Terraform applies ferry's provider (built from this
// tree, installed from a local mirror by the executor's one terraform init) in one root module, a
// workspace per customer, two at a time, on the real registry, Kubernetes and Argo CD.
//
//   - Waves: a canary, then main (16), then risky (1), then the rest (2), with a pause of 20 s
//     between waves: main starts only after the canary finished and the pause.
//   - Kill and resume: the first run is interrupted (SIGINT, as a cancelled CI job) once two main
//     targets succeeded; the second run applies none of the targets the first finished (their
//     Terraform state is untouched) and continues with the others.
//   - A closed window: tf-window's deny window is closed through the first run (deferred, then
//     halted by the interruption) and opens about 35 s into the second run: it is deferred, not
//     failed, and started within 60 s of the window opening, while the wave goes on.
//   - A real failure: tf-bad's Application reads a path the bundle does not have (Argo CD cannot
//     generate its manifests); its wave's failure rate passes the 2% budget, the rollout halts and
//     the last wave is never applied. The report names the failure with its class and the exit
//     code is the class's (2).
func TestCLIFleetRolloutTerraform(t *testing.T) {
	e := sharedEnv.Get(t)
	tf := testenv.Terraform(t)
	_, cliConfig := testenv.ProviderMirror(t, "registry.terraform.io")

	window0 := denyUntil(time.Now(), time.Now().Add(time.Hour))
	fts := []fleetTarget{{name: "tf-canary", labels: map[string]string{"wave": "canary"}}}
	fts = append(fts, fleetTarget{name: "tf-window", labels: map[string]string{"wave": "main"}, windows: []window.Spec{window0}})
	for i := 1; i <= 15; i++ {
		fts = append(fts, fleetTarget{name: fmt.Sprintf("tf-m%02d", i), labels: map[string]string{"wave": "main"}})
	}
	fts = append(fts, fleetTarget{name: "tf-bad", labels: map[string]string{"wave": "risky", "path": "does-not-exist"}},
		fleetTarget{name: "tf-after1", labels: map[string]string{"wave": "last"}}, fleetTarget{name: "tf-after2", labels: map[string]string{"wave": "last"}})
	for i := range fts {
		fts[i].noApp = true // each customer's Terraform creates its Application
	}
	if len(fts) != 20 {
		t.Fatalf("%d targets, want 20", len(fts))
	}
	c, repo, digest := fleetFixture(t, e, "terraform", fts)

	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "customer"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeText(t, filepath.Join(work, "customer", "main.tf"), tfCustomerRoot+testenv.ProviderConfig(e))
	var spec strings.Builder
	spec.WriteString("apiVersion: ferry.dev/v1\nkind: Fleet\nname: tf20\ntargets:\n")
	for _, ft := range fts {
		labels, _ := json.Marshal(ft.labels)
		fmt.Fprintf(&spec, "  - name: %s\n    labels: %s\n    dir: customer\n    workspace: %s\n", ft.name, labels, ft.name)
	}
	fmt.Fprintf(&spec, `rollout:
  waves:
    - {name: canary, selector: wave=canary}
    - {name: main, selector: wave=main}
    - {name: risky, selector: wave=risky}
  maxConcurrency: 2
  pauseBetweenWaves: 20s
  failureBudget: 2
executor:
  type: terraform
  binary: %q
  vars:
    customer: "{{.Target.Name}}"
    path: '{{or (index .Target.Labels "path") "."}}'
  env:
    TF_CLI_CONFIG_FILE: %q
  gracePeriod: 15s
`, tf, cliConfig)
	specFile := filepath.Join(work, "fleet.yaml")
	writeText(t, specFile, spec.String())
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	args := func(logs string) []string {
		return []string{"fleet", "rollout", repo + ":2.0.0", "-f", specFile, "--plain-http", "--argocd-namespace", e.ArgoCD.Namespace,
			"--format", "json", "--output-dir", logs}
	}
	ctx := context.Background()

	// Run 1, interrupted once two targets of the main wave succeeded: once the Applications of
	// tf-m03 and tf-m04 exist, whose applies each start only when a running target of the wave
	// has ended (two at a time; tf-window is deferred).
	logs1 := t.TempDir()
	cmd, wait := startFerry(t, env, args(logs1)...)
	deadline := time.Now().Add(6 * time.Minute)
	for {
		_, err3 := c.GetApplication(ctx, "tf-m03")
		_, err4 := c.GetApplication(ctx, "tf-m04")
		if err3 == nil && err4 == nil {
			break
		}
		if exited := cmd.Process.Signal(syscall.Signal(0)) != nil; exited || time.Now().After(deadline) {
			cmd.Process.Kill()
			r := wait()
			t.Fatalf("tf-m03 and tf-m04 were not started within 6 minutes of the rollout's start (ferry exited: %v)\n%s\n%s", exited, r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	r := wait()
	t.Logf("run 1 (interrupted):\n%s", r.stderr)
	if r.code != 130 {
		t.Fatalf("interrupted rollout = exit %d, want 130\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := decodeReport(t, r)
	if !rep.Interrupted || rep.Executor != "terraform" || len(rep.Targets) != 20 {
		t.Fatalf("run 1 report: interrupted %v, executor %s, %d targets", rep.Interrupted, rep.Executor, len(rep.Targets))
	}
	canary := rep.Target("tf-canary")
	if canary.State != fleet.TargetSucceeded || canary.AlreadyDone || canary.Finished == nil {
		t.Fatalf("run 1: canary = %+v", canary)
	}
	for _, tr := range rep.Targets {
		if tr.Wave != "canary" && tr.Started != nil && tr.Started.Before(canary.Finished.Add(20*time.Second)) {
			t.Errorf("run 1: %s (wave %s) started at %v, before the canary finished (%v) and the 20 s pause", tr.Name, tr.Wave, tr.Started, canary.Finished)
		}
		if (tr.Wave == "risky" || tr.Wave == "rest") && (tr.State != fleet.TargetHalted || tr.Started != nil) {
			t.Errorf("run 1: %s (wave %s) = %s, started %v: want halted, never started", tr.Name, tr.Wave, tr.State, tr.Started)
		}
	}
	mainDone := 0
	for _, tr := range rep.Targets {
		if tr.Wave == "main" && tr.State == fleet.TargetSucceeded {
			mainDone++
		}
	}
	if mainDone < 2 {
		t.Errorf("run 1: %d targets of wave main succeeded before the interruption, want at least 2", mainDone)
	}
	if w := rep.Target("tf-window"); w.State != fleet.TargetHalted || w.DeferredUntil == nil || w.Started != nil || !strings.Contains(w.Message, "deferred until its window opens") {
		t.Errorf("run 1: tf-window = %s (deferred until %v, started %v) %s: want halted while deferred", w.State, w.DeferredUntil, w.Started, w.Message)
	}
	// One terraform init for the directory all targets share: the canary's.
	for _, tr := range rep.Targets {
		b, err := os.ReadFile(filepath.Join(logs1, tr.Name+".log"))
		if tr.Started == nil {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if inits := strings.Contains(string(b), "Installing ferry-dev/ferry v"+testenv.ProviderVersion); inits != (tr.Name == "tf-canary") {
			t.Errorf("run 1: %s's output shows terraform init: %v, want only the first target's:\n%s", tr.Name, inits, b)
		}
	}
	finished := map[string]time.Time{} // state files of the targets run 1 finished
	for _, tr := range rep.Targets {
		if tr.State == fleet.TargetSucceeded {
			fi, err := os.Stat(filepath.Join(work, "customer", "terraform.tfstate.d", tr.Name, "terraform.tfstate"))
			if err != nil {
				t.Fatal(err)
			}
			finished[tr.Name] = fi.ModTime()
		}
	}

	// Run 2: tf-window's deny window now ends 35 s from here, after the run's first pause (20 s)
	// and before the main wave can end and the pause after it pass.
	opens := time.Now().Add(35 * time.Second)
	wft := fts[1]
	wft.windows = []window.Spec{denyUntil(time.Now(), opens)}
	if err := c.ApplyEnvironment(ctx, fixtureEnvironment(e, wft)); err != nil {
		t.Fatal(err)
	}
	r = ferry(t, env, "", args(t.TempDir())...)
	t.Logf("run 2:\n%s", r.stderr)
	if r.code != 2 {
		t.Fatalf("resumed rollout = exit %d, want 2 (the permanent failure of tf-bad)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep = decodeReport(t, r)
	for name, mod := range finished {
		tr := rep.Target(name)
		if tr.State != fleet.TargetSucceeded || !tr.AlreadyDone || tr.Started != nil {
			t.Errorf("run 2: %s, finished by run 1, = %s (already done %v, started %v)", name, tr.State, tr.AlreadyDone, tr.Started)
		}
		fi, err := os.Stat(filepath.Join(work, "customer", "terraform.tfstate.d", name, "terraform.tfstate"))
		if err != nil || !fi.ModTime().Equal(mod) {
			t.Errorf("run 2: the Terraform state of %s, finished by run 1, changed (%v)", name, err)
		}
	}
	for _, tr := range rep.Targets {
		if tr.Wave == "main" && tr.State != fleet.TargetSucceeded {
			t.Errorf("run 2: %s = %s (%s) %s\n%s", tr.Name, tr.State, tr.Class, tr.Message, tr.OutputTail)
		}
	}
	w := rep.Target("tf-window")
	if w.DeferredUntil == nil || w.Started == nil {
		t.Fatalf("run 2: tf-window was not deferred before it ran: %+v", w)
	}
	if w.DeferredUntil.Sub(opens).Abs() > 2*time.Second || w.Started.Before(*w.DeferredUntil) || w.Started.Sub(*w.DeferredUntil) > 60*time.Second {
		t.Errorf("run 2: tf-window deferred until %v (its window opens at %v), started at %v: want started within 60 s of the opening", w.DeferredUntil, opens, w.Started)
	}
	bad := rep.Target("tf-bad")
	if bad.State != fleet.TargetFailed || bad.Class != string(argocd.ClassPermanent) || !strings.Contains(bad.Message, "tf-bad") {
		t.Errorf("run 2: tf-bad = %s (%s) %s, want failed, permanent", bad.State, bad.Class, bad.Message)
	}
	if !rep.Halted || !strings.Contains(rep.HaltReason, "wave risky") {
		t.Errorf("run 2: halted %v (%s), want halted by wave risky", rep.Halted, rep.HaltReason)
	}
	for _, n := range []string{"tf-after1", "tf-after2"} {
		if tr := rep.Target(n); tr.State != fleet.TargetHalted || tr.Started != nil {
			t.Errorf("run 2: %s = %s, started %v: want halted, never started", n, tr.State, tr.Started)
		}
		if _, err := c.GetApplication(ctx, n); err == nil {
			t.Errorf("run 2: the Application of %s exists, although its target was halted", n)
		}
	}
	total := 0
	for _, s := range fleet.FinalTargetStates() {
		total += rep.Counts[s]
	}
	if total != 20 || rep.Counts[fleet.TargetSucceeded] != 17 || rep.Counts[fleet.TargetFailed] != 1 || rep.Counts[fleet.TargetHalted] != 2 {
		t.Errorf("run 2 counts = %v, want 17 succeeded, 1 failed, 2 halted", rep.Counts)
	}
	lives, err := fleet.Observe(ctx, c, fleet.Selector{Names: []string{"tf-canary", "tf-window", "tf-m15"}}, digest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lives {
		if !l.Done {
			t.Errorf("%s is not synced to %s and healthy after the rollout: %+v", l.Environment, digest, l)
		}
	}
}
