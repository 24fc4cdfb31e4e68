package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// scriptTools parses the TOOLS=( ... ) and MODULE_TOOLS=( ... ) tables of
// tools.sh, in that order.
func scriptTools(t *testing.T) []ToolSpec {
	t.Helper()
	f, err := os.Open("tools.sh")
	if err != nil {
		t.Fatalf("open tools.sh: %v", err)
	}
	defer f.Close()
	var (
		specs  []ToolSpec
		table  string // "TOOLS" or "MODULE_TOOLS" while inside one
		closed = map[string]bool{}
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "TOOLS=(" || line == "MODULE_TOOLS=(":
			table = strings.TrimSuffix(line, "=(")
		case table != "" && line == ")":
			closed[table], table = true, ""
		case table == "TOOLS" && line != "" && !strings.HasPrefix(line, "#"):
			fields := strings.Fields(strings.Trim(line, `"`))
			if len(fields) != 3 {
				t.Fatalf("tools.sh: malformed TOOLS line %q, want \"<name> <package> <version>\"", line)
			}
			specs = append(specs, ToolSpec{Name: fields[0], Package: fields[1], Version: fields[2]})
		case table == "MODULE_TOOLS" && line != "" && !strings.HasPrefix(line, "#"):
			fields := strings.Fields(strings.Trim(line, `"`))
			if len(fields) != 6 {
				t.Fatalf("tools.sh: malformed MODULE_TOOLS line %q, want 6 fields", line)
			}
			spec := ToolSpec{Name: fields[0], Package: fields[1], Version: fields[2]}
			if fields[3] != "-" {
				spec.Toolchain = fields[3]
			}
			if fields[4] != "-" {
				spec.LocalReplace = fields[4]
			}
			for _, b := range strings.Split(fields[5], ",") {
				name, pkg, ok := strings.Cut(b, "=")
				if !ok {
					t.Fatalf("tools.sh: malformed binary %q in %q, want <binary>=<package>", b, line)
				}
				spec.Binaries = append(spec.Binaries, ToolBinary{Name: name, Package: pkg})
			}
			specs = append(specs, spec)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read tools.sh: %v", err)
	}
	if !closed["TOOLS"] || !closed["MODULE_TOOLS"] || len(specs) == 0 {
		t.Fatalf("tools.sh: no TOOLS=( ... ) and MODULE_TOOLS=( ... ) tables found")
	}
	return specs
}

func TestToolsTableMatchesScript(t *testing.T) {
	got := scriptTools(t)
	if !reflect.DeepEqual(got, Tools) {
		t.Errorf("tools.sh tables = %+v, want %+v (keep tools.sh and Tools in tools.go in sync)", got, Tools)
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
		line := spec.Name + " " + spec.Package + " " + spec.Version
		if spec.Binaries != nil {
			var bins []string
			for _, b := range spec.Binaries {
				bins = append(bins, b.Name+"="+b.Package)
			}
			line += " " + dash(spec.Toolchain) + " " + dash(spec.LocalReplace) + " " + strings.Join(bins, ",")
		}
		want = append(want, line)
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("tools.sh list = %q, want %q", got, want)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// allBinaries lists every binary of every tool with the tool's directory
// name ("<tool>-<version>").
func allBinaries() map[string]string {
	out := map[string]string{}
	for _, spec := range Tools {
		for _, b := range spec.binaries() {
			out[b] = spec.Name + "-" + spec.Version
		}
	}
	return out
}

func TestToolPathMatchesScript(t *testing.T) {
	bash := lookBash(t)
	tests := []struct {
		name string
		env  map[string]string
		root string // the tool root, with $TMP standing for t.TempDir()
	}{
		{
			name: "FERRY_TOOLS_DIR wins",
			env:  map[string]string{"FERRY_TOOLS_DIR": "$TMP/tools", "XDG_CACHE_HOME": "$TMP/xdg", "HOME": "$TMP/home"},
			root: "$TMP/tools",
		},
		{
			name: "XDG_CACHE_HOME",
			env:  map[string]string{"FERRY_TOOLS_DIR": "", "XDG_CACHE_HOME": "$TMP/xdg", "HOME": "$TMP/home"},
			root: "$TMP/xdg/ferry/tools",
		},
		{
			name: "HOME",
			env:  map[string]string{"FERRY_TOOLS_DIR": "", "XDG_CACHE_HOME": "", "HOME": "$TMP/home"},
			root: "$TMP/home/.cache/ferry/tools",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			expand := func(s string) string { return strings.ReplaceAll(s, "$TMP", tmp) }
			for k, v := range tt.env {
				t.Setenv(k, expand(v))
			}
			for name, dir := range allBinaries() {
				want := filepath.Join(expand(tt.root), dir, name)
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

func TestToolsScriptPathErrors(t *testing.T) {
	bash := lookBash(t)
	tests := []struct {
		name    string
		wantErr []string
	}{
		{name: "kubernetes", wantErr: []string{`"kubernetes" is a tool, not a binary`, "kube-apiserver", "kube-controller-manager"}},
		{name: "docker", wantErr: []string{`unknown tool "docker"`, "registry", "argocd", "kube-apiserver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bash, "tools.sh", "path", tt.name)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("tools.sh path %s succeeded, want an error", tt.name)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("tools.sh path %s stderr = %q, want it to mention %q", tt.name, stderr.String(), w)
				}
			}
			if _, err := ToolPath(tt.name); err == nil {
				t.Errorf("ToolPath(%q) error = nil, want an error", tt.name)
			}
		})
	}
}

// TestToolsScriptInstallSkipsInstalled proves that `tools.sh install`
// builds nothing when every binary is cached: there is no go on PATH.
func TestToolsScriptInstallSkipsInstalled(t *testing.T) {
	bash := lookBash(t)
	tests := []struct {
		name   string
		target string
		want   []string // tools reported as installed
	}{
		{name: "all", target: "all", want: []string{"registry", "oras", "cosign", "tfplugindocs", "kustomize", "helm", "staticcheck", "unparam", "goreleaser", "kubernetes", "etcd", "argocd", "tofu", "source-controller"}},
		{name: "by binary", target: "kube-controller-manager", want: []string{"kubernetes"}},
		{name: "by tool", target: "argocd", want: []string{"argocd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, sub := range allBinaries() {
				fake := filepath.Join(dir, sub, name)
				if err := os.MkdirAll(filepath.Dir(fake), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bash, "tools.sh", "install", tt.target)
			cmd.Env = append(filterEnv(os.Environ(), "FERRY_TOOLS_DIR", "PATH"), "FERRY_TOOLS_DIR="+dir, "PATH="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("tools.sh install %s: %v\n%s", tt.target, err, out)
			}
			for _, tool := range tt.want {
				if want := "tools.sh: " + tool + " "; !strings.Contains(string(out), want) || !strings.Contains(string(out), "already installed") {
					t.Errorf("tools.sh install %s output = %q, want %q ... already installed", tt.target, out, want)
				}
			}
			if got, want := strings.Count(string(out), "already installed"), len(tt.want); got != want {
				t.Errorf("tools.sh install %s reported %d installed tools, want %d:\n%s", tt.target, got, want, out)
			}
		})
	}
}

// TestToolsScriptModule checks the tools modules tools.sh generates from the
// upstream go.mod files (read from the module cache; downloaded if needed).
func TestToolsScriptModule(t *testing.T) {
	bash := lookBash(t)
	if testing.Short() {
		t.Skip("reads upstream go.mod files from the module cache or proxy")
	}
	tests := []struct {
		tool      string
		want      []string // lines of the generated go.mod
		wantNot   []string // substrings it must not contain
		wantTools []string // in tools.go
	}{
		{
			tool: "kubernetes",
			want: []string{
				"require k8s.io/kubernetes v1.34.4",
				"go 1.24.0",
				"godebug default=go1.24",
				"replace k8s.io/api => k8s.io/api v0.34.4",
				"replace k8s.io/client-go => k8s.io/client-go v0.34.4",
			},
			wantNot:   []string{"./staging"},
			wantTools: []string{`_ "k8s.io/kubernetes/cmd/kube-apiserver"`, `_ "k8s.io/kubernetes/cmd/kube-controller-manager"`},
		},
		{
			tool:      "etcd",
			want:      []string{"require go.etcd.io/etcd/server/v3 v3.6.6"},
			wantNot:   []string{"replace", "FORBIDDEN_DEPENDENCY"},
			wantTools: []string{`_ "go.etcd.io/etcd/server/v3"`},
		},
		{
			tool: "argocd",
			want: []string{
				"require github.com/argoproj/argo-cd/v3 v3.6.1",
				"go 1.27.0",
				"replace github.com/argoproj/argo-cd/gitops-engine/v3 => github.com/argoproj/argo-cd/gitops-engine/v3 v3.6.1",
				"replace k8s.io/api => k8s.io/api v0.37.0",
				"replace gopkg.in/yaml.v2 => gopkg.in/yaml.v2 v2.4.0",
			},
			wantNot:   []string{"./gitops-engine"},
			wantTools: []string{`_ "github.com/argoproj/argo-cd/v3/cmd"`},
		},
		{
			tool: "tofu",
			want: []string{
				"require github.com/opentofu/opentofu v1.12.6",
				"go 1.26.6",
				"tlsmlkem=0", // in the godebug block
				"replace github.com/hashicorp/hcl/v2 v2.20.1 => github.com/opentofu/hcl/v2 v2.20.2-0.20251021132045-587d123c2828",
			},
			wantTools: []string{`_ "github.com/opentofu/opentofu/cmd/tofu"`},
		},
		{
			tool: "source-controller",
			want: []string{
				"require github.com/fluxcd/source-controller v1.9.4",
				"replace github.com/fluxcd/source-controller/api => github.com/fluxcd/source-controller/api v1.9.4",
				// tool_replaces: a version the module proxy serves.
				"replace github.com/fluxcd/pkg/artifact v0.18.2 => github.com/fluxcd/pkg/artifact v0.18.1",
			},
			wantNot:   []string{"./api"},
			wantTools: []string{`_ "github.com/fluxcd/source-controller"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			root := t.TempDir()
			cmd := exec.Command(bash, "tools.sh", "module", tt.tool)
			cmd.Env = append(filterEnv(os.Environ(), "FERRY_TOOLS_DIR"), "FERRY_TOOLS_DIR="+root)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tools.sh module %s: %v\n%s", tt.tool, err, stderr.String())
			}
			dir := strings.TrimSpace(string(out))
			if want := filepath.Join(root, "src", tt.tool+"-"+mustSpec(t, tt.tool).Version); dir != want {
				t.Errorf("tools.sh module %s = %q, want %q", tt.tool, dir, want)
			}
			gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(string(gomod), "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("go.mod of %s lacks %q:\n%s", tt.tool, w, gomod)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(string(gomod), w) {
					t.Errorf("go.mod of %s contains %q:\n%s", tt.tool, w, gomod)
				}
			}
			toolsGo, err := os.ReadFile(filepath.Join(dir, "tools.go"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range append([]string{"//go:build tools"}, tt.wantTools...) {
				if !strings.Contains(string(toolsGo), w) {
					t.Errorf("tools.go of %s lacks %q:\n%s", tt.tool, w, toolsGo)
				}
			}
		})
	}
}

func TestArgoCDCRDDir(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the Argo CD module from the module cache or proxy")
	}
	dir, err := ArgoCDCRDDir()
	if err != nil {
		t.Fatalf("ArgoCDCRDDir() error = %v", err)
	}
	spec := mustSpec(t, "argocd")
	if want := "argo-cd/v3@" + spec.Version + "/manifests/crds"; !strings.HasSuffix(dir, want) {
		t.Errorf("ArgoCDCRDDir() = %q, want a directory ending in %q", dir, want)
	}
	for _, f := range []string{"application-crd.yaml", "appproject-crd.yaml", "applicationset-crd.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("ArgoCDCRDDir() = %q without %s: %v", dir, f, err)
		}
	}
	crds, err := loadArgoCDCRDs()
	if err != nil {
		t.Fatalf("loadArgoCDCRDs() error = %v", err)
	}
	var names []string
	for _, c := range crds {
		names = append(names, c.name)
	}
	if want := []string{"applications.argoproj.io", "appprojects.argoproj.io", "applicationsets.argoproj.io"}; !reflect.DeepEqual(names, want) {
		t.Errorf("loadArgoCDCRDs() names = %q, want %q", names, want)
	}
}

func TestFluxCRDDir(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the source-controller module from the module cache or proxy")
	}
	dir, err := FluxCRDDir()
	if err != nil {
		t.Fatalf("FluxCRDDir() error = %v", err)
	}
	spec := mustSpec(t, "source-controller")
	if want := "source-controller@" + spec.Version + "/config/crd/bases"; !strings.HasSuffix(dir, want) {
		t.Errorf("FluxCRDDir() = %q, want a directory ending in %q", dir, want)
	}
	crds, err := loadFluxCRDs()
	if err != nil {
		t.Fatalf("loadFluxCRDs() error = %v", err)
	}
	var names []string
	for _, c := range crds {
		names = append(names, c.name)
	}
	if !slices.Contains(names, "ocirepositories.source.toolkit.fluxcd.io") || !slices.Contains(names, "gitrepositories.source.toolkit.fluxcd.io") {
		t.Errorf("loadFluxCRDs() names = %q, want the OCIRepository and GitRepository CRDs among them", names)
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
		{name: "unknown tool", tool: "docker", wantErr: []string{`unknown tool "docker"`, "oras", "registry", "kube-apiserver"}},
		{name: "cached module tool binary is used", tool: "kube-controller-manager", installed: true},
		{name: "build failure names make tools", tool: "registry", path: "empty",
			wantErr: []string{"make tools", "tools.sh install registry", "registry-v3.0.0"}},
		{name: "module tool build failure names make tools", tool: "etcd", path: "empty",
			wantErr: []string{"make tools", "tools.sh install etcd", "etcd-v3.6.6"}},
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
				want = filepath.Join(dir, allBinaries()[tt.tool], tt.tool)
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
