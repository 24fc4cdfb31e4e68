package fleet

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

const validFleet = `apiVersion: ferry.dev/v1
kind: Fleet
name: shop
targets:
  - name: acme
    labels: {tier: canary, region: eu}
    dir: customers/acme
  - name: globex
    application: shop-globex
    labels: {region: us}
    workspace: globex-prod
  - name: initech
    labels: {region: eu}
  - name: umbrella
rollout:
  waves:
    - name: canary
      selector: tier=canary
    - percent: 50
  maxConcurrency: 3
  pauseBetweenWaves: 5m
  failureBudget: "10%"
  deadline: 2h
executor:
  type: sync
  timeout: 10m
`

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(validFleet), "fleet.yaml")
	if err != nil {
		t.Fatalf("ParseSpec() error = %v", err)
	}
	if s.Name != "shop" || len(s.Targets) != 4 {
		t.Fatalf("ParseSpec() = %+v", s)
	}
	if got := s.Targets[1]; got.Application != "shop-globex" || got.Workspace != "globex-prod" || got.Labels["region"] != "us" {
		t.Errorf("targets[1] = %+v", got)
	}
	if got := s.Targets[0].Dir; got != "customers/acme" {
		t.Errorf("targets[0].dir = %q, want customers/acme", got)
	}
	r := s.Rollout
	if r.MaxConcurrency != 3 || r.PauseBetweenWaves != 5*time.Minute || r.FailureBudget != 10 || r.Deadline != 2*time.Hour {
		t.Errorf("rollout = %+v", r)
	}
	if len(r.Waves) != 2 || r.Waves[0].Selector != "tier=canary" || r.Waves[1].Percent != 50 || r.Waves[1].Name != "wave-2" {
		t.Errorf("waves = %+v", r.Waves)
	}
	if s.Executor.Type != "sync" || s.Executor.Settings == nil || len(s.Executor.Settings.Content) != 2 || s.Executor.Settings.Content[0].Value != "timeout" {
		t.Errorf("executor = %+v", s.Executor)
	}
	if line := s.Executor.Settings.Content[0].Line; line != 26 {
		t.Errorf("executor settings keep their lines: timeout at line %d, want 26", line)
	}
}

func TestParseSpecDefaults(t *testing.T) {
	s, err := ParseSpec([]byte("apiVersion: ferry.dev/v1\nkind: Fleet\nname: f\ntargets: [{name: a, dir: a}]\n"), "fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := s.Rollout
	if r.MaxConcurrency != DefaultMaxConcurrency || r.FailureBudget != DefaultFailureBudget || r.Deadline != DefaultDeadline || r.PauseBetweenWaves != 0 || r.TargetTimeout != DefaultTargetTimeout {
		t.Errorf("defaults = %+v", r)
	}
	if s.Executor.Type != DefaultExecutor || s.Executor.Settings != nil {
		t.Errorf("executor = %+v, want the default terraform with no settings", s.Executor)
	}
}

// TestParseSpecErrors checks that each problem is reported with the file, line and field, and
// that every problem of a file is reported at once.
func TestParseSpecErrors(t *testing.T) {
	head := "apiVersion: ferry.dev/v1\nkind: Fleet\nname: f\n"
	tests := []struct {
		name string
		yaml string
		want []string // each a substring of one error: "fleet.yaml:LINE: FIELD: …"
	}{
		{"unknown top field", head + "targets: [{name: a}]\nwaves: []\n", []string{"fleet.yaml:5: waves: unknown field"}},
		{"unknown target field", head + "targets:\n  - name: a\n    path: x\n", []string{"fleet.yaml:6: targets[0].path: unknown field; known fields are name, application, labels, dir, workspace"}},
		{"missing target name", head + "targets:\n  - dir: x\n", []string{"fleet.yaml:5: targets[0].name: is required"}},
		{"duplicate target", head + "targets:\n  - name: a\n  - name: a\n", []string{"fleet.yaml:6: targets[1].name: \"a\" is already the name of targets[0]"}},
		{"bad target name", head + "targets:\n  - name: Acme_1\n", []string{"fleet.yaml:5: targets[0].name: \"Acme_1\" is not a valid environment name"}},
		{"bad label", head + "targets:\n  - name: a\n    labels: {tier: \"a b\"}\n", []string{"fleet.yaml:6: targets[0].labels.tier:"}},
		{"no targets", head + "targets: []\n", []string{"fleet.yaml:4: targets: must list at least one target"}},
		{"wave with two ways", head + "targets: [{name: a}]\nrollout:\n  waves:\n    - count: 1\n      percent: 5\n", []string{"fleet.yaml:7: rollout.waves[0]: needs exactly one of count, percent or selector"}},
		{"wave with none", head + "targets: [{name: a}]\nrollout:\n  waves:\n    - name: x\n", []string{"fleet.yaml:7: rollout.waves[0]: needs exactly one"}},
		{"bad count", head + "targets: [{name: a}]\nrollout:\n  waves:\n    - count: 0\n", []string{"fleet.yaml:7: rollout.waves[0].count: must be a whole number of at least 1"}},
		{"bad percent", head + "targets: [{name: a}]\nrollout:\n  waves:\n    - percent: 150\n", []string{"fleet.yaml:7: rollout.waves[0].percent: must be a percentage from more than 0 to 100"}},
		{"bad selector", head + "targets: [{name: a}]\nrollout:\n  waves:\n    - selector: \"tier in (\"\n", []string{"fleet.yaml:7: rollout.waves[0].selector: \"tier in (\" is not a valid label selector"}},
		{"duplicate wave name", head + "targets: [{name: a}]\nrollout:\n  waves:\n    - {name: w, count: 1}\n    - {name: w, count: 1}\n", []string{"fleet.yaml:8: rollout.waves[1].name: \"w\" names another wave"}},
		{"bad concurrency", head + "targets: [{name: a}]\nrollout:\n  maxConcurrency: 0\n", []string{"fleet.yaml:6: rollout.maxConcurrency: must be a whole number of at least 1"}},
		{"bad budget", head + "targets: [{name: a}]\nrollout:\n  failureBudget: lots\n", []string{"fleet.yaml:6: rollout.failureBudget: must be a percentage from 0 to 100"}},
		{"bad pause", head + "targets: [{name: a}]\nrollout:\n  pauseBetweenWaves: 5\n", []string{"fleet.yaml:6: rollout.pauseBetweenWaves: \"5\" is not a positive duration"}},
		{"bad deadline", head + "targets: [{name: a}]\nrollout:\n  deadline: 0s\n", []string{"fleet.yaml:6: rollout.deadline: \"0s\" is not a positive duration"}},
		{"bad target timeout", head + "targets: [{name: a}]\nrollout:\n  targetTimeout: forever\n", []string{"fleet.yaml:6: rollout.targetTimeout: \"forever\" is not a positive duration"}},
		{"unknown rollout field", head + "targets: [{name: a}]\nrollout:\n  canary: 1\n", []string{"fleet.yaml:6: rollout.canary: unknown field"}},
		{"unknown executor", head + "targets: [{name: a}]\nexecutor:\n  type: ansible\n", []string{"fleet.yaml:6: executor.type: unknown executor \"ansible\"; use one of terraform, sync, command, hcp-terraform"}},
		{"wrong apiVersion and kind", "apiVersion: ferry.dev/v2\nkind: Bundle\nname: f\ntargets: [{name: a}]\n", []string{"fleet.yaml:1: apiVersion: unsupported version", "fleet.yaml:2: kind: must be \"Fleet\""}},
		{"missing fields", "apiVersion: ferry.dev/v1\n", []string{"fleet.yaml:1: kind: is required", "fleet.yaml:1: name: is required", "fleet.yaml:1: targets: is required"}},
		{"duplicate key", head + "name: g\ntargets: [{name: a}]\n", []string{"fleet.yaml:4: name: defined more than once"}},
		{"not yaml", "a: [\n", []string{"fleet.yaml:1: not valid YAML"}},
		{"empty", "", []string{"fleet.yaml: file is empty"}},
		{"terraform target without dir", head + "targets:\n  - name: a\n    workspace: a\n", []string{"fleet.yaml:5: targets[0].dir: is required by the terraform executor: the directory of a's Terraform root module"}},
		{"workspace like a flag", head + "targets:\n  - name: a\n    dir: x\n    workspace: -chdir=/\n", []string{"fleet.yaml:7: targets[0].workspace: \"-chdir=/\" is not a workspace name"}},
		{"two documents", head + "targets: [{name: a}]\n---\na: b\n", []string{"fleet.yaml:5: more than one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.yaml), "fleet.yaml")
			if err == nil {
				t.Fatalf("ParseSpec() = nil error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("ParseSpec() error %v does not wrap ErrInvalidSpec", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseSpec() error =\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestLoadSpecMissingDir: a terraform target whose directory does not exist is an error of
// fleet.yaml, with its line, before any rollout starts.
func TestLoadSpecMissingDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: ferry.dev/v1\nkind: Fleet\nname: f\ntargets:\n  - name: acme\n    dir: acme\n  - name: globex\n    dir: customers/globex\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSpec(path)
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), path+":8: targets[1].dir: \"customers/globex\" is not a directory") || strings.Contains(err.Error(), "targets[0]") {
		t.Fatalf("LoadSpec() error = %v, want targets[1].dir named at line 8", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "customers", "globex"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(path); err != nil {
		t.Fatalf("LoadSpec() with both directories = %v", err)
	}
}

func names(ts []Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestPlanWaves(t *testing.T) {
	var targets []Target
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		targets = append(targets, Target{Name: n, Labels: map[string]string{"region": map[bool]string{true: "eu", false: "us"}[n < "e"]}})
	}
	targets[7].Labels["tier"] = "canary"
	tests := []struct {
		name  string
		waves []WaveSpec
		want  map[string][]string
		order []string
	}{
		{"no waves", nil, map[string][]string{"all": names(targets)}, []string{"all"}},
		{"canary count then rest", []WaveSpec{{Name: "canary", Count: 1}}, map[string][]string{"canary": {"a"}, "rest": {"b", "c", "d", "e", "f", "g", "h", "i", "j"}}, []string{"canary", "rest"}},
		{"selector first, then percent of all targets", []WaveSpec{{Name: "canary", Selector: "tier=canary"}, {Name: "half", Percent: 25}},
			map[string][]string{"canary": {"h"}, "half": {"a", "b", "c"}, "rest": {"d", "e", "f", "g", "i", "j"}}, []string{"canary", "half", "rest"}},
		{"order by label", []WaveSpec{{Name: "us", Selector: "region=us"}, {Name: "eu", Selector: "region=eu"}},
			map[string][]string{"us": {"e", "f", "g", "h", "i", "j"}, "eu": {"a", "b", "c", "d"}}, []string{"us", "eu"}},
		{"empty wave dropped, count larger than what remains", []WaveSpec{{Name: "none", Selector: "tier=gold"}, {Name: "big", Count: 50}},
			map[string][]string{"big": names(targets)}, []string{"big"}},
		{"small percent takes at least one", []WaveSpec{{Name: "canary", Percent: 1}}, map[string][]string{"canary": {"a"}, "rest": names(targets[1:])}, []string{"canary", "rest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waves, err := PlanWaves(targets, tt.waves)
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, w := range waves {
				order = append(order, w.Name)
				if got := names(w.Targets); !slices.Equal(got, tt.want[w.Name]) {
					t.Errorf("PlanWaves() wave %s = %v, want %v", w.Name, got, tt.want[w.Name])
				}
			}
			if !slices.Equal(order, tt.order) {
				t.Errorf("PlanWaves() waves = %v, want %v", order, tt.order)
			}
		})
	}
}

func TestNewExecutorSettings(t *testing.T) {
	spec := func(exec string) *Spec {
		s, err := ParseSpec([]byte("apiVersion: ferry.dev/v1\nkind: Fleet\nname: f\ntargets: [{name: a}]\nexecutor:\n"+exec), "fleet.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := spec("  type: sync\n  timeout: 10m\n  retries: 3\n  stuckAfter: soon\n")
	_, err := NewExecutor(s.Executor.Type, s.Executor.Settings, ExecutorEnv{File: "fleet.yaml", Client: nil})
	if err == nil || !strings.Contains(err.Error(), "needs the cluster") {
		t.Errorf("NewExecutor(sync) without a client = %v", err)
	}
	_, err = newSyncExecutorFromSettings(s.Executor.Settings, ExecutorEnv{File: "fleet.yaml", Client: fakeClient()})
	for _, w := range []string{"fleet.yaml:8: executor.retries: unknown field of the sync executor", "fleet.yaml:9: executor.stuckAfter: \"soon\" is not a positive duration"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("sync executor settings error = %v, want %q", err, w)
		}
	}
	s = spec("  type: sync\n  timeout: 10m\n")
	ex, err := NewExecutor(s.Executor.Type, s.Executor.Settings, ExecutorEnv{File: "fleet.yaml", Client: fakeClient()})
	if err != nil {
		t.Fatal(err)
	}
	if se := ex.(*SyncExecutor); se.opts.Timeout != 10*time.Minute {
		t.Errorf("sync executor timeout = %v, want 10m", se.opts.Timeout)
	}
}

// fakeClient is a client that is never called.
func fakeClient() *argocd.Client { return argocd.NewFromDynamic(nil, "argocd") }
