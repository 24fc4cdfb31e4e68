package fleet

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/yamlspec"
	"k8s.io/apimachinery/pkg/labels"
)

// SpecAPIVersion is the only apiVersion of fleet.yaml this version of ferry understands.
const SpecAPIVersion = "ferry.dev/v1"

// SpecKind is the kind of fleet.yaml.
const SpecKind = "Fleet"

// Defaults of a rollout: what an absent fleet.yaml field (or CLI flag) means. docs/fleet.md and the
// CLI's flags take their defaults from here.
const (
	// DefaultMaxConcurrency is how many targets a wave applies at once.
	DefaultMaxConcurrency = 10
	// DefaultFailureBudget is the failure rate of a wave, in percent, above which a rollout halts.
	DefaultFailureBudget = 2.0
	// DefaultDeadline is how long after its start a rollout still starts targets (deferred ones
	// included).
	DefaultDeadline = 6 * time.Hour
	// DefaultTargetTimeout bounds one target's executor run: a hung apply frees its slot and
	// fails (timeout) rather than holding the rollout until someone notices.
	DefaultTargetTimeout = 2 * time.Hour
	// DefaultExecutor is the executor type when fleet.yaml has no executor block.
	DefaultExecutor = "terraform"
)

// ErrInvalidSpec is wrapped by every *SpecError: fleet.yaml (or a wave given on the command line)
// is not valid.
var ErrInvalidSpec = errors.New("invalid fleet spec")

// SpecError is one problem in fleet.yaml. It wraps [ErrInvalidSpec]. Executors report problems in
// their settings with it too (see [ExecutorEnv.Errorf]).
type SpecError struct {
	File  string // file name as given to ParseSpec
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted field path, e.g. "targets[2].labels" or "rollout.waves[0].percent"
	Msg   string // what is wrong and what to do
}

func (e *SpecError) Error() string { return yamlspec.Message(e.File, e.Line, e.Field, e.Msg) }

// Unwrap returns [ErrInvalidSpec].
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// Spec is a parsed fleet.yaml. See docs/fleet.md.
type Spec struct {
	Name     string
	Targets  []Target
	Rollout  RolloutSpec
	Executor ExecutorSpec

	// File is the file name as given to ParseSpec; Dir the directory LoadSpec read it from
	// (relative target dirs are relative to it), "" for ParseSpec.
	File string
	Dir  string

	// dirLines are the lines of each target's dir field (its entry's line without one), for
	// LoadSpec's errors.
	dirLines []int
}

// RolloutSpec is fleet.yaml's rollout block. Absent fields hold the defaults.
type RolloutSpec struct {
	// Waves in order; the first is the canary. Targets no wave places go in a final wave.
	Waves []WaveSpec
	// MaxConcurrency is how many targets are applied at once. Default DefaultMaxConcurrency.
	MaxConcurrency int
	// PauseBetweenWaves is waited after each wave but the last. Default 0.
	PauseBetweenWaves time.Duration
	// FailureBudget is the failure rate of a wave, in percent (0 to 100), above which the
	// rollout halts. Default DefaultFailureBudget.
	FailureBudget float64
	// Deadline is how long after its start the rollout still starts targets. Default
	// DefaultDeadline.
	Deadline time.Duration
	// TargetTimeout bounds one target's executor run (RolloutOptions.TargetTimeout). Default
	// DefaultTargetTimeout.
	TargetTimeout time.Duration
}

// WaveSpec is one wave: exactly one of Count, Percent and Selector says which targets it takes.
type WaveSpec struct {
	Name string
	// Count takes the next Count targets not yet placed, in fleet.yaml's order.
	Count int
	// Percent takes the next ceil(Percent% of all targets) targets not yet placed.
	Percent float64
	// Selector takes every target not yet placed whose labels match this Kubernetes label
	// selector ("tier=canary", "region in (eu,us)").
	Selector string
}

// ExecutorSpec is fleet.yaml's executor block.
type ExecutorSpec struct {
	// Type selects the executor: terraform (default), sync, command, hcp-terraform.
	Type string
	// Settings is the executor block's mapping without its type field (line numbers kept),
	// nil when the block has no other field. The executor's constructor validates it.
	Settings *yaml.Node
}

var (
	// targetNameRE is an AppProject's name: a DNS subdomain.
	targetNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
	// workspaceRE is a Terraform workspace name that is also an HCP Terraform one (up to 90
	// characters) and never reads as a command-line flag.
	workspaceRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,89}$`)
	fleetNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

var (
	specFields     = []string{"apiVersion", "kind", "name", "targets", "rollout", "executor"}
	targetFields   = []string{"name", "application", "labels", "dir", "workspace"}
	rolloutFields  = []string{"waves", "maxConcurrency", "pauseBetweenWaves", "failureBudget", "deadline", "targetTimeout"}
	waveFields     = []string{"name", "count", "percent", "selector"}
	executorFields = []string{"type", "<the executor's settings>"}
)

type specParser struct {
	yamlspec.Parser
	spec *Spec
}

func newSpecError(file string, line int, field, msg string) error {
	return &SpecError{File: file, Line: line, Field: field, Msg: msg}
}

// LoadSpec reads and parses the fleet.yaml at path; relative target directories are relative to
// its directory.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet spec: %w", err)
	}
	s, err := ParseSpec(data, path)
	if err != nil {
		return nil, err
	}
	s.Dir = filepath.Dir(path)
	if s.Executor.Type == "terraform" {
		// A missing directory is found now, not when its target's turn comes mid-rollout.
		var errs []error
		for i, t := range s.Targets {
			if fi, err := os.Stat(resolveDir(s.Dir, t.Dir)); err != nil || !fi.IsDir() {
				errs = append(errs, &SpecError{File: path, Line: s.dirLines[i], Field: fmt.Sprintf("targets[%d].dir", i),
					Msg: fmt.Sprintf("%q is not a directory (relative dirs are relative to fleet.yaml's directory); check out %s's root module there or fix the path", t.Dir, t.Name)})
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return s, nil
}

// ParseSpec parses and validates the contents of a fleet.yaml. file names the file in errors.
// Unknown fields, wrong types and invalid values are errors that name the line and the field; all
// problems found are returned together, joined. The executor's settings are not validated here
// (NewExecutor does).
func ParseSpec(data []byte, file string) (*Spec, error) {
	p := &specParser{Parser: yamlspec.Parser{File: file, NewError: newSpecError}, spec: &Spec{File: file, Executor: ExecutorSpec{Type: DefaultExecutor},
		Rollout: RolloutSpec{MaxConcurrency: DefaultMaxConcurrency, FailureBudget: DefaultFailureBudget, Deadline: DefaultDeadline, TargetTimeout: DefaultTargetTimeout}}}
	root, err := p.Root(data, SpecAPIVersion)
	if err != nil {
		return nil, err
	}
	p.parseTop(root)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return p.spec, nil
}

func (p *specParser) mapping(v *yaml.Node, field string) bool {
	if v.Kind != yaml.MappingNode {
		p.Errorf(v, field, "must be a mapping of fields, got a %s", yamlspec.KindName(v))
		return false
	}
	return true
}

func (p *specParser) integer(v *yaml.Node, field string, min int) (int, bool) {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
		p.Errorf(v, field, "must be a whole number, got %s", describe(v))
		return 0, false
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil || n < min {
		p.Errorf(v, field, "must be a whole number of at least %d, got %s", min, v.Value)
		return 0, false
	}
	return n, true
}

// percent reads 0 to 100 percent, as a number (2, 0.5) or a string with a % sign ("2%").
func (p *specParser) percent(v *yaml.Node, field string, allowZero bool) (float64, bool) {
	if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float" && v.Tag != "!!str") {
		p.Errorf(v, field, "must be a percentage such as 2 or \"2%%\", got %s", describe(v))
		return 0, false
	}
	f, err := ParsePercent(v.Value)
	if err != nil || (!allowZero && f == 0) {
		lo := "0"
		if !allowZero {
			lo = "more than 0"
		}
		p.Errorf(v, field, "must be a percentage from %s to 100, such as 2 or \"2%%\", got %q", lo, v.Value)
		return 0, false
	}
	return f, true
}

// ParsePercent parses "2", "2%", "0.5" or "0.5%" as a percentage from 0 to 100.
func ParsePercent(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 0 to 100", s)
	}
	return f, nil
}

func (p *specParser) duration(v *yaml.Node, field string, allowZero bool) (time.Duration, bool) {
	s, ok := p.Str(v, field)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || (!allowZero && d == 0) {
		p.Errorf(v, field, "%q is not a positive duration; use a number with its unit, e.g. 90s, 10m or 6h", s)
		return 0, false
	}
	return d, true
}

func describe(v *yaml.Node) string {
	if v.Kind == yaml.ScalarNode {
		return strconv.Quote(v.Value)
	}
	return "a " + yamlspec.KindName(v)
}

func (p *specParser) parseTop(root *yaml.Node) {
	s := p.spec
	present := map[string]bool{}
	p.Fields(root, "", func(key string, k, v *yaml.Node) {
		present[key] = true
		switch key {
		case "apiVersion":
			if val, ok := p.Str(v, key); ok && val != SpecAPIVersion {
				p.Errorf(v, key, "unsupported version %q; this ferry reads %q", val, SpecAPIVersion)
			}
		case "kind":
			if val, ok := p.Str(v, key); ok && val != SpecKind {
				p.Errorf(v, key, "must be %q, got %q", SpecKind, val)
			}
		case "name":
			if val, ok := p.Str(v, key); ok {
				if !fleetNameRE.MatchString(val) {
					p.Errorf(v, key, "%q is not a valid name; use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit", val)
				}
				s.Name = val
			}
		case "targets":
			p.parseTargets(v)
		case "rollout":
			p.parseRollout(v)
		case "executor":
			p.parseExecutor(v)
		default:
			p.Errorf(k, key, "unknown field; known fields are %s", strings.Join(specFields, ", "))
		}
	})
	for _, req := range []string{"apiVersion", "kind", "name", "targets"} {
		if !present[req] {
			p.Errorf(root, req, "is required")
		}
	}
	if s.Executor.Type == "terraform" {
		for i, t := range s.Targets {
			if t.Dir == "" && t.Name != "" {
				p.Errorf(&yaml.Node{Line: s.dirLines[i]}, fmt.Sprintf("targets[%d].dir", i),
					"is required by the terraform executor: the directory of %s's Terraform root module, relative to fleet.yaml", t.Name)
			}
		}
	}
	if len(p.Errs) == 0 {
		// Waves that name no target are allowed (a selector may match nothing today); a plan
		// that cannot be made is not.
		if _, err := PlanWaves(s.Targets, s.Rollout.Waves); err != nil {
			p.Errorf(root, "rollout.waves", "%v", err)
		}
	}
}

func (p *specParser) parseTargets(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.Errorf(v, "targets", "must be a list of targets, got a %s", yamlspec.KindName(v))
		return
	}
	if len(v.Content) == 0 {
		p.Errorf(v, "targets", "must list at least one target")
		return
	}
	names := map[string]int{}
	for i, tn := range v.Content {
		field := fmt.Sprintf("targets[%d]", i)
		if tn.Kind == yaml.AliasNode {
			tn = tn.Alias
		}
		if !p.mapping(tn, field) {
			continue
		}
		var t Target
		hasName := false
		dirLine := tn.Line
		p.Fields(tn, field, func(key string, k, val *yaml.Node) {
			f := yamlspec.JoinField(field, key)
			switch key {
			case "name":
				if s, ok := p.Str(val, f); ok {
					hasName = true
					if !targetNameRE.MatchString(s) {
						p.Errorf(val, f, "%q is not a valid environment name; use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", s)
					} else if prev, dup := names[s]; dup {
						p.Errorf(val, f, "%q is already the name of targets[%d]; each environment is listed once", s, prev)
					} else {
						names[s] = i
					}
					t.Name = s
				}
			case "application":
				if s, ok := p.Str(val, f); ok {
					if !targetNameRE.MatchString(s) {
						p.Errorf(val, f, "%q is not a valid Application name", s)
					}
					t.Application = s
				}
			case "labels":
				if !p.mapping(val, f) {
					return
				}
				t.Labels = map[string]string{}
				p.Fields(val, f, func(lk string, lkn, lv *yaml.Node) {
					lf := yamlspec.JoinField(f, lk)
					s, ok := p.Str(lv, lf)
					if !ok {
						return
					}
					if errs := labelErrors(lk, s); errs != "" {
						p.Errorf(lkn, lf, "%s", errs)
					}
					t.Labels[lk] = s
				})
			case "dir":
				if s, ok := p.Str(val, f); ok {
					t.Dir, dirLine = s, val.Line
				}
			case "workspace":
				if s, ok := p.Str(val, f); ok {
					if !workspaceRE.MatchString(s) {
						p.Errorf(val, f, "%q is not a workspace name; use up to 90 letters, digits, '-', '_' and '.', starting with a letter, digit or '_'", s)
					}
					t.Workspace = s
				}
			default:
				p.Errorf(k, f, "unknown field; known fields are %s", strings.Join(targetFields, ", "))
			}
		})
		if !hasName {
			p.Errorf(tn, field+".name", "is required")
		}
		p.spec.Targets = append(p.spec.Targets, t)
		p.spec.dirLines = append(p.spec.dirLines, dirLine)
	}
}

// labelErrors checks a label as Kubernetes does.
func labelErrors(k, v string) string {
	if _, err := labels.Parse(k + "=" + v); err != nil {
		return fmt.Sprintf("%q: %q is not a valid Kubernetes label: %v", k, v, err)
	}
	return ""
}

func (p *specParser) parseRollout(v *yaml.Node) {
	if !p.mapping(v, "rollout") {
		return
	}
	r := &p.spec.Rollout
	p.Fields(v, "rollout", func(key string, k, val *yaml.Node) {
		f := "rollout." + key
		switch key {
		case "waves":
			p.parseWaves(val)
		case "maxConcurrency":
			if n, ok := p.integer(val, f, 1); ok {
				r.MaxConcurrency = n
			}
		case "pauseBetweenWaves":
			if d, ok := p.duration(val, f, true); ok {
				r.PauseBetweenWaves = d
			}
		case "failureBudget":
			if pc, ok := p.percent(val, f, true); ok {
				r.FailureBudget = pc
			}
		case "deadline":
			if d, ok := p.duration(val, f, false); ok {
				r.Deadline = d
			}
		case "targetTimeout":
			if d, ok := p.duration(val, f, false); ok {
				r.TargetTimeout = d
			}
		default:
			p.Errorf(k, f, "unknown field; known fields are %s", strings.Join(rolloutFields, ", "))
		}
	})
}

func (p *specParser) parseWaves(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.Errorf(v, "rollout.waves", "must be a list of waves, got a %s", yamlspec.KindName(v))
		return
	}
	names := map[string]bool{}
	for i, wn := range v.Content {
		field := fmt.Sprintf("rollout.waves[%d]", i)
		if wn.Kind == yaml.AliasNode {
			wn = wn.Alias
		}
		if !p.mapping(wn, field) {
			continue
		}
		var w WaveSpec
		ways := 0
		p.Fields(wn, field, func(key string, k, val *yaml.Node) {
			f := yamlspec.JoinField(field, key)
			switch key {
			case "name":
				if s, ok := p.Str(val, f); ok {
					if names[s] {
						p.Errorf(val, f, "%q names another wave already; wave names are unique", s)
					}
					names[s] = true
					w.Name = s
				}
			case "count":
				ways++
				if n, ok := p.integer(val, f, 1); ok {
					w.Count = n
				}
			case "percent":
				ways++
				if pc, ok := p.percent(val, f, false); ok {
					w.Percent = pc
				}
			case "selector":
				ways++
				if s, ok := p.Str(val, f); ok {
					if _, err := labels.Parse(s); err != nil {
						p.Errorf(val, f, "%q is not a valid label selector: %v", s, err)
					}
					w.Selector = s
				}
			default:
				p.Errorf(k, f, "unknown field; known fields are %s", strings.Join(waveFields, ", "))
			}
		})
		if ways != 1 {
			p.Errorf(wn, field, "needs exactly one of count, percent or selector")
		}
		if w.Name == "" {
			w.Name = fmt.Sprintf("wave-%d", i+1)
			if i == 0 {
				w.Name = "canary"
			}
		}
		p.spec.Rollout.Waves = append(p.spec.Rollout.Waves, w)
	}
}

func (p *specParser) parseExecutor(v *yaml.Node) {
	if !p.mapping(v, "executor") {
		return
	}
	e := &p.spec.Executor
	settings := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
	p.Fields(v, "executor", func(key string, k, val *yaml.Node) {
		if key != "type" {
			settings.Content = append(settings.Content, k, val)
			return
		}
		if s, ok := p.Str(val, "executor.type"); ok {
			if !slicesContains(ExecutorTypes(), s) {
				p.Errorf(val, "executor.type", "unknown executor %q; use one of %s", s, strings.Join(ExecutorTypes(), ", "))
			}
			e.Type = s
		}
	})
	if len(settings.Content) > 0 {
		e.Settings = settings
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// SpecFields lists the known fields of each fleet.yaml block, for docs and tests.
func SpecFields() map[string][]string {
	return map[string][]string{"": specFields, "targets[]": targetFields, "rollout": rolloutFields, "rollout.waves[]": waveFields, "executor": executorFields}
}
