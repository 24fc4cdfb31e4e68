package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scriptTools parses the TOOLS=( ... ) table of tools.sh.
func scriptTools(t *testing.T) []ToolSpec {
	t.Helper()
	f, err := os.Open("tools.sh")
	if err != nil {
		t.Fatalf("open tools.sh: %v", err)
	}
	defer f.Close()
	var (
		specs   []ToolSpec
		inTable bool
		closed  bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "TOOLS=(":
			inTable = true
		case inTable && line == ")":
			inTable, closed = false, true
		case inTable && line != "" && !strings.HasPrefix(line, "#"):
			fields := strings.Fields(strings.Trim(line, `"`))
			if len(fields) != 3 {
				t.Fatalf("tools.sh: malformed table line %q, want \"<name> <package> <version>\"", line)
			}
			specs = append(specs, ToolSpec{Name: fields[0], Package: fields[1], Version: fields[2]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read tools.sh: %v", err)
	}
	if !closed || len(specs) == 0 {
		t.Fatalf("tools.sh: no TOOLS=( ... ) table found")
	}
	return specs
}

func TestToolsTableMatchesScript(t *testing.T) {
	got := scriptTools(t)
	if !reflect.DeepEqual(got, Tools) {
		t.Errorf("tools.sh table = %+v, want %+v (keep tools.sh and Tools in tools.go in sync)", got, Tools)
	}
}

func TestToolsScriptList(t *testing.T) {
	bash := lookBash(t)
	out, err := exec.Command(bash, "tools.sh", "list").Output()
	if err != nil {
		t.Fatalf("tools.sh list: %v", err)
	}
	var want []string
	for _, spec := range Tools {
		want = append(want, spec.Name+" "+spec.Package+" "+spec.Version)
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("tools.sh list = %q, want %q", got, want)
	}
}

func TestToolPathMatchesScript(t *testing.T) {
	bash := lookBash(t)
	tests := []struct {
		name  string
		env   map[string]string
		want  string // ToolPath("registry"), with $TMP standing for t.TempDir()
		wantO string // ToolPath("oras")
	}{
		{
			name:  "FERRY_TOOLS_DIR wins",
			env:   map[string]string{"FERRY_TOOLS_DIR": "$TMP/tools", "XDG_CACHE_HOME": "$TMP/xdg", "HOME": "$TMP/home"},
			want:  "$TMP/tools/registry-v3.0.0/registry",
			wantO: "$TMP/tools/oras-v1.3.0/oras",
		},
		{
			name:  "XDG_CACHE_HOME",
			env:   map[string]string{"FERRY_TOOLS_DIR": "", "XDG_CACHE_HOME": "$TMP/xdg", "HOME": "$TMP/home"},
			want:  "$TMP/xdg/ferry/tools/registry-v3.0.0/registry",
			wantO: "$TMP/xdg/ferry/tools/oras-v1.3.0/oras",
		},
		{
			name:  "HOME",
			env:   map[string]string{"FERRY_TOOLS_DIR": "", "XDG_CACHE_HOME": "", "HOME": "$TMP/home"},
			want:  "$TMP/home/.cache/ferry/tools/registry-v3.0.0/registry",
			wantO: "$TMP/home/.cache/ferry/tools/oras-v1.3.0/oras",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			expand := func(s string) string { return strings.ReplaceAll(s, "$TMP", tmp) }
			for k, v := range tt.env {
				t.Setenv(k, expand(v))
			}
			for name, want := range map[string]string{"registry": expand(tt.want), "oras": expand(tt.wantO)} {
				got, err := ToolPath(name)
				if err != nil {
					t.Fatalf("ToolPath(%q) error = %v", name, err)
				}
				if got != want {
					t.Errorf("ToolPath(%q) = %q, want %q", name, got, want)
				}
				out, err := exec.Command(bash, "tools.sh", "path", name).Output()
				if err != nil {
					t.Fatalf("tools.sh path %s: %v", name, err)
				}
				if script := strings.TrimSpace(string(out)); script != got {
					t.Errorf("tools.sh path %s = %q, want ToolPath(%q) = %q", name, script, name, got)
				}
			}
		})
	}
}

func TestTool(t *testing.T) {
	tests := []struct {
		name      string
		tool      string
		installed bool   // put a fake executable in the cache first
		path      string // PATH for the call; "" keeps the current one
		wantErr   []string
	}{
		{name: "cached binary is used", tool: "oras", installed: true},
		{name: "unknown tool", tool: "docker", wantErr: []string{`unknown tool "docker"`, "oras", "registry"}},
		{name: "build failure names make tools", tool: "registry", path: "empty",
			wantErr: []string{"make tools", "tools.sh install registry", "registry-v3.0.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("FERRY_TOOLS_DIR", dir)
			if tt.path != "" {
				t.Setenv("PATH", t.TempDir()) // no go binary
			}
			want := ""
			if tt.installed {
				want = filepath.Join(dir, tt.tool+"-"+mustSpec(t, tt.tool).Version, tt.tool)
				if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Tool(tt.tool)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Tool(%q) = %q, want an error", tt.tool, got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Tool(%q) error = %v, want it to mention %q", tt.tool, err, w)
					}
				}
				return
			}
			if err != nil || got != want {
				t.Errorf("Tool(%q) = %q, %v, want %q, nil", tt.tool, got, err, want)
			}
		})
	}
}

func mustSpec(t *testing.T, name string) ToolSpec {
	t.Helper()
	spec, err := lookupTool(name)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func lookBash(t *testing.T) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("bash not available: %v", err)
	}
	return bash
}
