package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"
)

// Init policies of the terraform executor.
const (
	InitAuto   = "auto"   // terraform init when the target's .terraform directory is missing
	InitAlways = "always" // terraform init before every apply
	InitNever  = "never"  // never: the directory is initialised by other means
)

// TerraformSettings configure the terraform executor (fleet.yaml: executor: {type: terraform, …}).
type TerraformSettings struct {
	// Binary is the Terraform CLI to run: a path, or a name looked up on PATH ("terraform",
	// "tofu"). Default "terraform".
	Binary string `yaml:"binary,omitempty" json:"binary,omitempty"`
	// Variable is the root module variable the pinned bundle reference (host/path@sha256:…) is
	// passed to with -var. Default "bundle".
	Variable string `yaml:"variable,omitempty" json:"variable,omitempty"`
	// Vars are further -var arguments: variable name → Go template over {{.Target}} and
	// {{.Bundle}} ({customer: "{{.Target.Name}}", release: "{{.Bundle.Version}}"}).
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	// ExtraArgs are appended to the apply command line (["-parallelism=4", "-lock-timeout=60s"]).
	ExtraArgs []string `yaml:"extraArgs,omitempty" json:"extraArgs,omitempty"`
	// Env adds variables to the environment Terraform runs in (ferry's own, plus
	// TF_IN_AUTOMATION=1, TF_INPUT=0 and CHECKPOINT_DISABLE=1), each value a template like Vars.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Init is when to run terraform init -input=false: auto (default: when the target's
	// .terraform directory is missing), always or never.
	Init string `yaml:"init,omitempty" json:"init,omitempty"`
	// SerialInit runs one terraform init at a time across targets (applies still run in
	// parallel). It is implied when TF_PLUGIN_CACHE_DIR is set in the environment or in Env:
	// Terraform does not guarantee that concurrent inits sharing a plugin cache are safe.
	SerialInit bool `yaml:"serialInit,omitempty" json:"serialInit,omitempty"`
	// GracePeriod is how long Terraform has between SIGINT and SIGKILL when the rollout is
	// cancelled; Terraform uses it to stop and write its state. Default 30s.
	GracePeriod time.Duration `yaml:"gracePeriod,omitempty" json:"gracePeriod,omitempty"`
	// BaseDir is the directory relative target dirs are resolved against: fleet.yaml's
	// directory when the executor comes from fleet.yaml; default the current one.
	BaseDir string `yaml:"-" json:"-"`
}

// Terraform is the terraform executor, the default: in the target's directory it runs
// terraform init (when needed), terraform workspace list and new (when the target names a
// workspace that does not exist yet) and terraform apply with the bundle as a variable, in the
// target's workspace (TF_WORKSPACE).
type Terraform struct {
	binary     string
	variable   string
	vars       map[string]*template.Template
	extraArgs  []string
	env        map[string]*template.Template
	init       string
	serialInit bool
	grace      time.Duration
	baseDir    string
}

// initMu serialises terraform init when a plugin cache is shared (TerraformSettings.SerialInit).
var initMu sync.Mutex

// NewTerraform checks s and returns a terraform executor.
func NewTerraform(s TerraformSettings) (*Terraform, error) {
	t := &Terraform{
		binary:     s.Binary,
		variable:   s.Variable,
		extraArgs:  append([]string(nil), s.ExtraArgs...),
		init:       s.Init,
		serialInit: s.SerialInit,
		grace:      graceOr(s.GracePeriod),
		baseDir:    s.BaseDir,
	}
	if t.binary == "" {
		t.binary = "terraform"
	}
	if t.variable == "" {
		t.variable = "bundle"
	}
	if !validVarName(t.variable) {
		return nil, fmt.Errorf("terraform executor: variable %q is not a Terraform variable name", t.variable)
	}
	switch t.init {
	case "":
		t.init = InitAuto
	case InitAuto, InitAlways, InitNever:
	default:
		return nil, fmt.Errorf("terraform executor: init %q: want %s, %s or %s", t.init, InitAuto, InitAlways, InitNever)
	}
	var err error
	if t.vars, err = parseTemplates("vars", s.Vars); err != nil {
		return nil, fmt.Errorf("terraform executor: %w", err)
	}
	for name := range s.Vars {
		if !validVarName(name) {
			return nil, fmt.Errorf("terraform executor: vars: %q is not a Terraform variable name", name)
		}
		if name == t.variable {
			return nil, fmt.Errorf("terraform executor: vars: %q is the bundle's variable", name)
		}
	}
	if t.env, err = parseTemplates("env", s.Env); err != nil {
		return nil, fmt.Errorf("terraform executor: %w", err)
	}
	if os.Getenv("TF_PLUGIN_CACHE_DIR") != "" {
		t.serialInit = true
	}
	if _, ok := s.Env["TF_PLUGIN_CACHE_DIR"]; ok {
		t.serialInit = true
	}
	return t, nil
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func validVarName(s string) bool { return varName.MatchString(s) }

// Name returns "terraform".
func (e *Terraform) Name() string { return "terraform" }

// Apply runs Terraform for t in t.Dir with b.Pinned() as the bundle variable.
func (e *Terraform) Apply(ctx context.Context, t Target, b Bundle, out io.Writer) error {
	if t.Dir == "" {
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: no dir: the terraform executor needs the target's root module directory", t.Name)}
	}
	dir := resolveDir(e.baseDir, t.Dir)
	data := templateData{Target: t, Bundle: b}
	env, err := execTemplates(e.env, data)
	if err != nil {
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
	}
	vars, err := execTemplates(e.vars, data)
	if err != nil {
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
	}
	env = withDefaults(env, map[string]string{"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
	// The workspace is selected per process (TF_WORKSPACE), never written to .terraform: targets
	// that share a directory with workspaces of their own can apply at once.
	base := withoutEnv(mergeEnv(os.Environ(), env), "TF_WORKSPACE")

	run := func(step string, environ []string, args ...string) (string, error) {
		fmt.Fprintf(out, "$ %s %s\n", e.binary, quoteArgv(args))
		cmd := exec.Command(e.binary, args...)
		cmd.Dir = dir
		cmd.Env = environ
		tail := newTailBuffer(tailSize)
		w := io.MultiWriter(out, tail)
		cmd.Stdout, cmd.Stderr = w, w
		err := runGroup(ctx, cmd, e.grace)
		if err == nil {
			return tail.String(), nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("target %s: terraform %s: %w", t.Name, step, context.Cause(ctx))
		}
		return "", classifyTerraform(t.Name, step, err, tail.String())
	}

	// init and the workspace's creation change the directory: one target at a time per
	// directory, and one init at all at a time with a shared plugin cache.
	if err := func() error {
		unlock := lockDir(dir)
		defer unlock()
		if e.needsInit(dir) {
			if e.serialInit {
				initMu.Lock()
			}
			_, err := run("init", base, "init", "-input=false", "-no-color")
			if e.serialInit {
				initMu.Unlock()
			}
			if err != nil {
				return err
			}
		}
		if t.Workspace == "" {
			return nil
		}
		list, err := run("workspace list", base, "workspace", "list")
		if err != nil {
			return err
		}
		if !slices.Contains(workspaceNames(list), t.Workspace) {
			_, err = run("workspace new", base, "workspace", "new", t.Workspace)
		}
		return err
	}(); err != nil {
		return err
	}
	// Always named: `workspace new` for another target sharing the directory selects its
	// workspace in .terraform/environment, which an apply without TF_WORKSPACE would follow into
	// that customer's state.
	ws := t.Workspace
	if ws == "" {
		ws = "default"
	}
	applyEnv := append(slices.Clip(base), "TF_WORKSPACE="+ws)
	args := []string{"apply", "-auto-approve", "-input=false", "-no-color", "-var", e.variable + "=" + b.Pinned()}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-var", k+"="+vars[k])
	}
	args = append(args, e.extraArgs...)
	_, err = run("apply", applyEnv, args...)
	return err
}

// dirLocks serialise the steps that change a target's directory (init, workspace new).
var dirLocks sync.Map // absolute dir → *sync.Mutex

func lockDir(dir string) (unlock func()) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	m, _ := dirLocks.LoadOrStore(dir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// workspaceNames parses the output of terraform workspace list ("* default\n  acme\n").
func workspaceNames(list string) []string {
	var names []string
	for _, l := range strings.Split(list, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l != "" {
			names = append(names, l)
		}
	}
	return names
}

// withoutEnv returns environ without the variable name.
func withoutEnv(environ []string, name string) []string {
	out := environ[:0:0]
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// needsInit reports whether to run terraform init in dir.
func (e *Terraform) needsInit(dir string) bool {
	switch e.init {
	case InitAlways:
		return true
	case InitNever:
		return false
	}
	_, err := os.Stat(filepath.Join(dir, ".terraform"))
	return err != nil
}

// withDefaults returns env with the defaults it does not set.
func withDefaults(env, defaults map[string]string) map[string]string {
	out := make(map[string]string, len(env)+len(defaults))
	for k, v := range defaults {
		if _, ok := os.LookupEnv(k); !ok {
			out[k] = v
		}
	}
	for k, v := range env {
		out[k] = v
	}
	return out
}

var (
	// ferryFailure is the detail of a ferry_application diagnostic that carries a failure class
	// (provider/application_resource.go, addSyncError): "Application NAME: CLASS failure."
	ferryFailure = regexp.MustCompile(`Application (\S+): (conflict|transient|permanent|window|approval|stuck|timeout) failure\.`)
	// diagnosticFrame is the frame Terraform draws around a diagnostic, with or without colour.
	diagnosticFrame = regexp.MustCompile(`(?m)^[│╷╵] ?`)
)

// stateLocked is Terraform's error when another run holds the state lock (every backend).
const stateLocked = "Error acquiring the state lock"

// networkFailures mark an error of Terraform's last diagnostic as a network or availability
// problem (a registry, a state backend or an API unreachable or overloaded): transient.
var networkFailures = []string{
	"connection refused", "connection reset by peer", "i/o timeout", "TLS handshake timeout",
	"no route to host", "503 Service Unavailable", "502 Bad Gateway", "504 Gateway Timeout",
	"429 Too Many Requests", "Client.Timeout exceeded",
}

// classifyTerraform turns a failed terraform step into a *ClassError: the class ferry's provider
// named in a ferry_application diagnostic, conflict when the state is locked, else permanent,
// with the last lines of the output.
func classifyTerraform(target, step string, err error, output string) error {
	plain := diagnosticFrame.ReplaceAllString(output, "")
	// Terraform wraps a diagnostic's detail at the terminal width: join the lines before matching.
	joined := strings.Join(strings.Fields(plain), " ")
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: terraform %s: %w", target, step, err)}
	}
	class, app := classPermanent, ""
	switch {
	case ferryFailure.MatchString(joined):
		m := ferryFailure.FindStringSubmatch(joined)
		app, class = m[1], m[2]
	case strings.Contains(joined, stateLocked):
		class = classConflict
	case containsAny(lastDiagnostic(plain), networkFailures):
		class = classTransient
	}
	msg := fmt.Sprintf("target %s: terraform %s failed (%s", target, step, class)
	if app != "" {
		msg += " failure of Application " + app
	} else if class == classConflict {
		msg += ": the state is locked by another run"
	} else if class == classTransient {
		msg += ": a network or availability error"
	}
	msg += ")"
	if last := lastErrorLines(plain, 8); last != "" {
		msg += ":\n" + last
	}
	return &ClassError{Class: class, Err: errors.New(msg)}
}

// lastDiagnostic returns the last "Error: " diagnostic of out with its lines joined, "" if none.
func lastDiagnostic(out string) string {
	i := strings.LastIndex(out, "Error: ")
	if i < 0 {
		return ""
	}
	return strings.Join(strings.Fields(out[i:]), " ")
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// lastErrorLines returns the first n lines of the last "Error: " diagnostic in out, else its
// last n lines.
func lastErrorLines(out string, n int) string {
	if i := strings.LastIndex(out, "Error: "); i >= 0 {
		lines := strings.Split(strings.TrimSpace(out[i:]), "\n")
		var keep []string
		for _, l := range lines {
			if l = strings.TrimRight(l, " \r"); l != "" {
				keep = append(keep, l)
			}
			if len(keep) == n {
				break
			}
		}
		return strings.Join(keep, "\n")
	}
	return lastLines(out, n)
}

// newTerraformExecutor is the terraform executor's ExecutorFactory.
func newTerraformExecutor(settings *yaml.Node, env ExecutorEnv) (Executor, error) {
	var s TerraformSettings
	if err := decodeSettings(settings, env, "terraform", &s); err != nil {
		return nil, err
	}
	s.BaseDir = env.Dir
	t, err := NewTerraform(s)
	if err != nil {
		return nil, env.Errorf(settings, "", "%s", strings.TrimPrefix(err.Error(), "terraform executor: "))
	}
	return t, nil
}

func init() { executorFactories["terraform"] = newTerraformExecutor }
