package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// Failure classes an executor reports, as the sync engine names them.
var (
	classConflict  = string(argocd.ClassConflict)
	classTransient = string(argocd.ClassTransient)
	classPermanent = string(argocd.ClassPermanent)
	classApproval  = string(argocd.ClassApproval)
)

// failureClasses are the classes an executor's failure may carry, in the docs' order.
var failureClasses = []argocd.Class{argocd.ClassConflict, argocd.ClassTransient, argocd.ClassPermanent,
	argocd.ClassWindow, argocd.ClassApproval, argocd.ClassStuck, argocd.ClassTimeout}

// knownClass reports whether c is a failure class of the sync engine.
func knownClass(c string) bool { return slices.Contains(failureClasses, argocd.Class(c)) }

// classNames returns the failure classes as strings.
func classNames() []string {
	n := make([]string, len(failureClasses))
	for i, c := range failureClasses {
		n[i] = string(c)
	}
	return n
}

// DefaultGracePeriod is how long a cancelled executor's process group has between SIGINT and
// SIGKILL when the settings give none.
const DefaultGracePeriod = 30 * time.Second

// ExitTempFail is EX_TEMPFAIL of sysexits.h: "temporary failure, the user is invited to retry".
// The command executor reports it as transient unless its exitCodes say otherwise.
const ExitTempFail = 75

// CommandSettings configure the command executor (fleet.yaml: executor: {type: command, …}).
type CommandSettings struct {
	// Command is the argv, each element a Go template over {{.Target}} and {{.Bundle}}
	// (["./deploy.sh", "{{.Target.Name}}", "{{.Bundle.Pinned}}"]). It is run directly, never
	// through a shell. Required.
	Command []string `yaml:"command" json:"command"`
	// Dir is the working directory, a template like Command, relative to BaseDir; default the
	// target's dir, else BaseDir.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// Env adds variables to the command's environment (which is ferry's own); each value is a
	// template like Command.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// ExitCodes maps an exit code to a failure class (transient, conflict, window, approval,
	// stuck, timeout, permanent). A nonzero code not listed is permanent; 75 (EX_TEMPFAIL) is
	// transient unless listed.
	ExitCodes map[int]string `yaml:"exitCodes,omitempty" json:"exitCodes,omitempty"`
	// GracePeriod is how long the command's process group has between SIGINT and SIGKILL when
	// the rollout is cancelled. Default 30s.
	GracePeriod time.Duration `yaml:"gracePeriod,omitempty" json:"gracePeriod,omitempty"`
	// BaseDir is the directory relative dirs (Dir, the target's dir) are resolved against:
	// fleet.yaml's directory when the executor comes from fleet.yaml; default the current one.
	BaseDir string `yaml:"-" json:"-"`
}

// Command is the command executor: it runs one command per target and reports its exit code
// as a failure class. Exit code 0 means the command did its part; the rollout then reads the
// target's Application to decide whether it is done.
type Command struct {
	argv      []*template.Template
	dir       *template.Template
	env       map[string]*template.Template
	exitCodes map[int]string
	grace     time.Duration
	baseDir   string
}

// NewCommand checks s and returns a command executor.
func NewCommand(s CommandSettings) (*Command, error) {
	if len(s.Command) == 0 {
		return nil, errors.New("command executor: command is empty")
	}
	c := &Command{exitCodes: map[int]string{ExitTempFail: classTransient}, grace: graceOr(s.GracePeriod), baseDir: s.BaseDir}
	for i, a := range s.Command {
		t, err := parseTemplate(fmt.Sprintf("command[%d]", i), a)
		if err != nil {
			return nil, fmt.Errorf("command executor: %w", err)
		}
		c.argv = append(c.argv, t)
	}
	if s.Dir != "" {
		t, err := parseTemplate("dir", s.Dir)
		if err != nil {
			return nil, fmt.Errorf("command executor: %w", err)
		}
		c.dir = t
	}
	env, err := parseTemplates("env", s.Env)
	if err != nil {
		return nil, fmt.Errorf("command executor: %w", err)
	}
	c.env = env
	for code, class := range s.ExitCodes {
		if code <= 0 || code > 255 {
			return nil, fmt.Errorf("command executor: exitCodes: %d is not an exit code of a failure (1-255)", code)
		}
		if !knownClass(class) {
			return nil, fmt.Errorf("command executor: exitCodes: %d: unknown class %q (want one of %s)", code, class, strings.Join(classNames(), ", "))
		}
		c.exitCodes[code] = class
	}
	return c, nil
}

// Name returns "command".
func (c *Command) Name() string { return "command" }

// Apply runs the command for t and b, its output (stdout and stderr) going to out.
func (c *Command) Apply(ctx context.Context, t Target, b Bundle, out io.Writer) error {
	data := templateData{Target: t, Bundle: b}
	argv := make([]string, len(c.argv))
	for i, tmpl := range c.argv {
		s, err := execTemplate(tmpl, data)
		if err != nil {
			return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
		}
		argv[i] = s
	}
	dir := t.Dir
	if c.dir != nil {
		s, err := execTemplate(c.dir, data)
		if err != nil {
			return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
		}
		dir = s
	}
	env, err := execTemplates(c.env, data)
	if err != nil {
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
	}
	if dir = resolveDir(c.baseDir, dir); dir == "" {
		dir = c.baseDir
	}
	fmt.Fprintf(out, "$ %s\n", quoteArgv(argv))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = mergeEnv(os.Environ(), env)
	tail := newTailBuffer(tailSize)
	w := io.MultiWriter(out, tail)
	cmd.Stdout, cmd.Stderr = w, w
	err = runGroup(ctx, cmd, c.grace)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("target %s: %s: %w", t.Name, argv[0], context.Cause(ctx))
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() < 0 {
		// Not started, or killed by a signal ferry did not send.
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %s: %w", t.Name, argv[0], err)}
	}
	code := ee.ExitCode()
	class, ok := c.exitCodes[code]
	if !ok {
		class = classPermanent
	}
	msg := fmt.Sprintf("target %s: %s exited with code %d (%s)", t.Name, argv[0], code, class)
	if last := lastLines(tail.String(), 5); last != "" {
		msg += ":\n" + last
	}
	return &ClassError{Class: class, Err: errors.New(msg)}
}

func graceOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultGracePeriod
	}
	return d
}

// templateData is what the executors' templates see: {{.Target.Name}}, {{.Bundle.Pinned}}, ….
type templateData struct {
	Target Target
	Bundle Bundle
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return t, nil
}

func parseTemplates(what string, m map[string]string) (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(m))
	for k, v := range m {
		t, err := parseTemplate(what+"."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = t
	}
	return out, nil
}

func execTemplate(t *template.Template, data templateData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %w", t.Name(), err)
	}
	return b.String(), nil
}

func execTemplates(m map[string]*template.Template, data templateData) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, t := range m {
		s, err := execTemplate(t, data)
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

// mergeEnv returns base with the variables of add set (replacing any of the same name).
func mergeEnv(base []string, add map[string]string) []string {
	out := make([]string, 0, len(base)+len(add))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := add[name]; !ok {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+add[k])
	}
	return out
}

// quoteArgv renders argv for the log line, quoting the arguments a shell would split.
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`|&;<>()*?[]#~") {
			q[i] = strconv.Quote(a)
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// runGroup runs cmd in a process group of its own and waits for it. When ctx is done it sends
// SIGINT to the whole group, then SIGKILL after grace if the command has not exited; the
// returned error is then the command's (the caller checks ctx).
func runGroup(ctx context.Context, cmd *exec.Cmd, grace time.Duration) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// Output pipes a grandchild keeps open must not keep Wait forever.
	cmd.WaitDelay = grace + 5*time.Second
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		_ = syscall.Kill(-pgid, syscall.SIGINT)
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			// The leader is gone; whatever it left in its group goes with it.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	err := cmd.Wait()
	close(exited)
	wg.Wait()
	return err
}

// tailSize is how much of an executor's output is kept to classify a failure.
const tailSize = 256 << 10

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{max: limit} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lastLines returns the last n non-blank lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			keep = append(keep, strings.TrimRight(lines[i], " \r"))
		}
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(keep, "\n"))))
}

// resolveDir returns dir resolved against base when it is relative ("" stays "").
func resolveDir(base, dir string) string {
	if dir == "" || filepath.IsAbs(dir) || base == "" {
		return dir
	}
	return filepath.Join(base, dir)
}

// decodeSettings decodes an executor's settings node (fleet.yaml's executor block without its
// type) into out, a pointer to a settings struct, reporting unknown fields and type errors with
// env.Errorf so that they name file, line and field.
func decodeSettings(node *yaml.Node, env ExecutorEnv, executor string, out any) error {
	if node == nil {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return env.Errorf(node, "", "the %s executor's settings must be a mapping", executor)
	}
	known := settingsFields(out)
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if !slices.Contains(known, k.Value) {
			errs = append(errs, env.Errorf(k, k.Value, "unknown field of the %s executor; known fields are type, %s", executor, strings.Join(known, ", ")))
			continue
		}
		// Decode field by field, so that each error names its field and line.
		one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{k, v}}
		if err := one.Decode(out); err != nil {
			msg := err.Error()
			var te *yaml.TypeError
			if errors.As(err, &te) {
				msg = strings.Join(te.Errors, "; ")
			}
			errs = append(errs, env.Errorf(v, k.Value, "%s", strings.TrimPrefix(msg, "yaml: ")))
		}
	}
	return errors.Join(errs...)
}

// settingsFields returns the yaml names of the fields of the struct out points to.
func settingsFields(out any) []string {
	t := reflect.TypeOf(out).Elem()
	var names []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// newCommandExecutor is the command executor's ExecutorFactory.
func newCommandExecutor(settings *yaml.Node, env ExecutorEnv) (Executor, error) {
	var s CommandSettings
	if err := decodeSettings(settings, env, "command", &s); err != nil {
		return nil, err
	}
	s.BaseDir = env.Dir
	c, err := NewCommand(s)
	if err != nil {
		return nil, env.Errorf(settings, "", "%s", strings.TrimPrefix(err.Error(), "command executor: "))
	}
	return c, nil
}

func init() { executorFactories["command"] = newCommandExecutor }
