package fleet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestCommandApply: every argument is a template, passed as one argument without a shell; the
// environment and the directory are the configured ones; the output is captured.
func TestCommandApply(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "customers"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := NewCommand(CommandSettings{
		Command: []string{"sh", "-c", `printf '%s|%s|%s|%s\n' "$1" "$2" "$DEPLOY_ENV" "$(basename "$PWD")"`, "deploy", "{{.Target.Name}}", "{{.Bundle.Pinned}}"},
		Env:     map[string]string{"DEPLOY_ENV": "{{index .Target.Labels \"tier\"}}"},
		Dir:     "customers",
		BaseDir: base,
	})
	if err != nil {
		t.Fatalf("NewCommand() error = %v", err)
	}
	target := Target{Name: "acme; rm -rf $HOME", Labels: map[string]string{"tier": "canary"}}
	var out bytes.Buffer
	if err := c.Apply(context.Background(), target, testBundle, &out); err != nil {
		t.Fatalf("Apply() error = %v\noutput:\n%s", err, out.String())
	}
	want := "acme; rm -rf $HOME|" + testBundle.Pinned() + "|canary|customers\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("Apply() output = %q, want it to end with %q", out.String(), want)
	}
	if !strings.HasPrefix(out.String(), "$ sh -c ") {
		t.Errorf("Apply() output = %q, want the command line first", out.String())
	}
}

// TestCommandExitCodes: exit codes map to failure classes: 75 (EX_TEMPFAIL) is transient by
// default, the exitCodes map adds or overrides, anything else is permanent, with the last lines
// of the output.
func TestCommandExitCodes(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		exitCodes map[int]string
		want      string
	}{
		{"tempfail", 75, nil, "transient"},
		{"unlisted", 1, nil, "permanent"},
		{"listed", 6, map[int]string{6: "conflict", 4: "window"}, "conflict"},
		{"tempfail overridden", 75, map[int]string{75: "permanent"}, "permanent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCommand(CommandSettings{
				Command:   []string{"sh", "-c", "echo first line; echo the pipeline refused >&2; exit " + strconv.Itoa(tt.code)},
				ExitCodes: tt.exitCodes,
			})
			if err != nil {
				t.Fatalf("NewCommand() error = %v", err)
			}
			var out bytes.Buffer
			err = c.Apply(context.Background(), Target{Name: "acme"}, testBundle, &out)
			var ce *ClassError
			if !errors.As(err, &ce) || ce.Class != tt.want {
				t.Fatalf("Apply() error = %v, want class %s", err, tt.want)
			}
			if !strings.Contains(err.Error(), "exited with code "+strconv.Itoa(tt.code)) || !strings.Contains(err.Error(), "the pipeline refused") {
				t.Errorf("Apply() error = %q, want the exit code and the output's last lines", err)
			}
			if !strings.Contains(out.String(), "the pipeline refused") {
				t.Errorf("output = %q, want stderr captured", out.String())
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		c, err := NewCommand(CommandSettings{Command: []string{filepath.Join(t.TempDir(), "missing")}})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Apply(context.Background(), Target{Name: "acme"}, testBundle, &bytes.Buffer{})
		var ce *ClassError
		if !errors.As(err, &ce) || ce.Class != "permanent" {
			t.Errorf("Apply() error = %v, want class permanent", err)
		}
	})
	t.Run("template error", func(t *testing.T) {
		c, err := NewCommand(CommandSettings{Command: []string{"echo", "{{.Target.Nmae}}"}})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Apply(context.Background(), Target{Name: "acme"}, testBundle, &bytes.Buffer{})
		var ce *ClassError
		if !errors.As(err, &ce) || ce.Class != "permanent" {
			t.Errorf("Apply() error = %v, want class permanent", err)
		}
	})
}

// TestCommandCancelKillsProcessGroup: cancelling Apply sends SIGINT to the command's process
// group, then SIGKILL after the grace period to a group that ignores SIGINT; a background
// grandchild dies with it, and Apply returns the context's error.
func TestCommandCancelKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		// A non-interactive shell's background job ignores SIGINT: it goes when the group is
		// killed after the shell exits.
		{"interruptible", `sleep 300 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait`},
		// Everything ignores SIGINT: only SIGKILL after the grace period ends it.
		{"ignores SIGINT", `trap '' INT; sleep 300 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait; wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			c, err := NewCommand(CommandSettings{Command: []string{"sh", "-c", tt.script, "sh", pidFile}, GracePeriod: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			out := &syncBuffer{}
			go func() { done <- c.Apply(ctx, Target{Name: "acme"}, testBundle, out) }()
			var pid int
			for pid == 0 {
				select {
				case err := <-done:
					t.Fatalf("Apply() ended early: %v\n%s", err, out.String())
				case <-time.After(20 * time.Millisecond):
				}
				if raw, err := os.ReadFile(pidFile); err == nil {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
				}
			}
			cancel()
			err = <-done
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Apply() error = %v, want context.Canceled", err)
			}
			for i := 0; processAlive(pid); i++ {
				if i == 200 {
					t.Fatalf("the background sleep (PID %d) still runs after the cancel", pid)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestCommandSettingsFromYAML: the factory reads fleet.yaml's settings and names what is wrong.
func TestCommandSettingsFromYAML(t *testing.T) {
	node := func(src string) *yaml.Node {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Content[0]
	}
	ex, err := NewExecutor("command", node("command: [./deploy.sh, '{{.Target.Name}}']\nexitCodes: {3: transient, 4: window}\ngracePeriod: 2m\n"), ExecutorEnv{File: "fleet.yaml", Dir: "/fleet"})
	if err != nil {
		t.Fatalf("NewExecutor() error = %v", err)
	}
	c := ex.(*Command)
	if c.Name() != "command" || c.exitCodes[3] != "transient" || c.exitCodes[4] != "window" || c.exitCodes[75] != "transient" || c.grace != 2*time.Minute || c.baseDir != "/fleet" {
		t.Errorf("NewExecutor() = %+v", c)
	}
	for _, tt := range []struct{ src, want string }{
		{"comand: [x]\n", "comand"},
		{"command: []\n", "command is empty"},
		{"command: [x]\nexitCodes: {3: flaky}\n", `unknown class "flaky"`},
		{"command: [x]\nexitCodes: {0: transient}\n", "not an exit code"},
		{"command: ['{{.Target.Name']\n", "template"},
	} {
		_, err := NewExecutor("command", node(tt.src), ExecutorEnv{File: "fleet.yaml"})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "fleet.yaml") {
			t.Errorf("NewExecutor(%q) error = %v, want one naming fleet.yaml and %q", tt.src, err, tt.want)
		}
	}
}
