package testenv

import (
	"bytes"
	_ "embed" // the tools.sh copy run by Tool and ArgoCDCRDDir
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ToolSpec pins one tool that the test environment runs.
type ToolSpec struct {
	// Name is the tool's key in the cache ("registry", "kubernetes"); the
	// binaries live in <ToolsDir>/<Name>-<Version>/.
	Name string
	// Package is the Go package passed to go install or, for a module tool
	// (Binaries set), the upstream module the binaries are built from.
	Package string
	// Version is the module version.
	Version string
	// Toolchain is the GOTOOLCHAIN a module tool is built with ("" for the
	// go on PATH).
	Toolchain string
	// LocalReplace is the version that the upstream go.mod's replace
	// directives pointing at local folders are rewritten to ("" drops them).
	LocalReplace string
	// Binaries are a module tool's binaries and their main packages; nil for
	// a go install tool, whose only binary is Name.
	Binaries []ToolBinary
}

// ToolBinary is one binary of a module tool.
type ToolBinary struct {
	// Name is the binary's file name, e.g. "kube-apiserver".
	Name string
	// Package is its main package.
	Package string
}

// Tools mirrors the pin tables in tools.sh (TOOLS, then MODULE_TOOLS), which
// are the source of truth; TestToolsTableMatchesScript fails when the two
// disagree.
var Tools = []ToolSpec{
	{Name: "registry", Package: "github.com/distribution/distribution/v3/cmd/registry", Version: "v3.0.0"},
	{Name: "oras", Package: "oras.land/oras/cmd/oras", Version: "v1.3.0"},
	// The signing interop tests run the cosign CLI, offline (no transparency log).
	{Name: "cosign", Package: "github.com/sigstore/cosign/v3/cmd/cosign", Version: "v3.1.3"},
	{Name: "tfplugindocs", Package: "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs", Version: "v0.25.0"},
	// The repo-server runs kustomize and helm for sources with kustomize or helm options.
	{Name: "kustomize", Package: "sigs.k8s.io/kustomize/kustomize/v5", Version: "v5.8.0"},
	{Name: "helm", Package: "helm.sh/helm/v3/cmd/helm", Version: "v3.22.0"},
	// make lint runs staticcheck.
	{Name: "staticcheck", Package: "honnef.co/go/tools/cmd/staticcheck", Version: "v0.8.2"},
	// make lint runs unparam: no parameter a function ignores.
	{Name: "unparam", Package: "mvdan.cc/unparam", Version: "v0.0.0-20260823230713-2fa3d841b0c8"},
	// make release-snapshot and the release test run goreleaser.
	{Name: "goreleaser", Package: "github.com/goreleaser/goreleaser/v2", Version: "v2.17.0"},
	{Name: "kubernetes", Package: "k8s.io/kubernetes", Version: "v1.34.4", LocalReplace: "v0.34.4", Binaries: []ToolBinary{
		{Name: "kube-apiserver", Package: "k8s.io/kubernetes/cmd/kube-apiserver"},
		{Name: "kube-controller-manager", Package: "k8s.io/kubernetes/cmd/kube-controller-manager"},
	}},
	{Name: "etcd", Package: "go.etcd.io/etcd/server/v3", Version: "v3.6.6", Binaries: []ToolBinary{
		{Name: "etcd", Package: "go.etcd.io/etcd/server/v3"},
	}},
	{Name: "argocd", Package: "github.com/argoproj/argo-cd/v3", Version: "v3.6.1", Toolchain: "go1.27.3", LocalReplace: "v3.6.1", Binaries: []ToolBinary{
		{Name: "argocd", Package: "github.com/argoproj/argo-cd/v3/cmd"},
	}},
	// The consumer tests install the bundle's module with OpenTofu's oci:// source.
	{Name: "tofu", Package: "github.com/opentofu/opentofu", Version: "v1.12.6", Binaries: []ToolBinary{
		{Name: "tofu", Package: "github.com/opentofu/opentofu/cmd/tofu"},
	}},
	// Flux's source-controller (StartFlux) reads the bundle through an OCIRepository.
	{Name: "source-controller", Package: "github.com/fluxcd/source-controller", Version: "v1.9.4", LocalReplace: "v1.9.4", Binaries: []ToolBinary{
		{Name: "source-controller", Package: "github.com/fluxcd/source-controller"},
	}},
}

//go:embed tools.sh
var toolsScript []byte

// ToolsDir returns the root of the tool cache, with the same precedence as
// tools.sh: $FERRY_TOOLS_DIR, else $XDG_CACHE_HOME/ferry/tools, else
// $HOME/.cache/ferry/tools.
func ToolsDir() (string, error) {
	if dir := os.Getenv("FERRY_TOOLS_DIR"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "ferry", "tools"), nil
	}
	home := os.Getenv("HOME")
	if home == "" {
		return "", errors.New("testenv: none of FERRY_TOOLS_DIR, XDG_CACHE_HOME and HOME is set")
	}
	return filepath.Join(home, ".cache", "ferry", "tools"), nil
}

// ToolPath returns where the pinned binary name ("registry",
// "kube-apiserver", "argocd", ...) lives in the cache
// (<ToolsDir>/<tool>-<version>/<name>), whether or not it is installed.
func ToolPath(name string) (string, error) {
	spec, err := lookupBinary(name)
	if err != nil {
		return "", err
	}
	root, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, spec.Name+"-"+spec.Version, name), nil
}

// binaries returns the names of the binaries spec provides.
func (s ToolSpec) binaries() []string {
	if s.Binaries == nil {
		return []string{s.Name}
	}
	names := make([]string, len(s.Binaries))
	for i, b := range s.Binaries {
		names[i] = b.Name
	}
	return names
}

// lookupBinary returns the tool that provides the binary name.
func lookupBinary(name string) (ToolSpec, error) {
	var names []string
	for _, spec := range Tools {
		for _, b := range spec.binaries() {
			if b == name {
				return spec, nil
			}
			names = append(names, b)
		}
	}
	sort.Strings(names)
	return ToolSpec{}, fmt.Errorf("testenv: unknown tool %q (known: %s)", name, strings.Join(names, ", "))
}

// lookupTool returns the tool spec called name.
func lookupTool(name string) (ToolSpec, error) {
	for _, spec := range Tools {
		if spec.Name == name {
			return spec, nil
		}
	}
	return lookupBinary(name)
}

// toolBuilds serialises builds of the same tool within this process.
var toolBuilds sync.Map // name -> *sync.Mutex

// Tool returns the path of a cached pinned binary ("registry", "oras",
// "kube-apiserver", "etcd", "argocd", ...), building it when missing: a go
// install tool is built like tools.sh does it (go install into the cache,
// respecting FERRY_TOOLS_DIR, from an empty working directory, so the
// project's go.mod is never touched); a module tool (Kubernetes, etcd, Argo
// CD: minutes on a small machine) is built by running the embedded copy of
// tools.sh. The error names `make tools`.
func Tool(name string) (string, error) {
	spec, err := lookupBinary(name)
	if err != nil {
		return "", err
	}
	bin, err := ToolPath(name)
	if err != nil {
		return "", err
	}
	if isExecutable(bin) {
		return bin, nil
	}
	mu, _ := toolBuilds.LoadOrStore(spec.Name, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if isExecutable(bin) { // built by a concurrent caller
		return bin, nil
	}
	if spec.Binaries == nil {
		err = installTool(spec, bin)
	} else {
		_, err = runToolsScript("install", spec.Name)
	}
	if err == nil && !isExecutable(bin) {
		err = fmt.Errorf("the build left no executable at %s", bin)
	}
	if err != nil {
		return "", fmt.Errorf("testenv: %s %s is not installed at %s and building it failed "+
			"(run `make tools`, i.e. internal/testenv/tools.sh install %s): %w",
			spec.Name, spec.Version, bin, spec.Name, err)
	}
	return bin, nil
}

// runToolsScript runs the embedded tools.sh with args and returns its
// standard output. Its progress messages go to this process's stderr.
func runToolsScript(args ...string) (string, error) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		return "", fmt.Errorf("bash is needed to run tools.sh: %w", err)
	}
	f, err := os.CreateTemp("", "ferry-tools-*.sh")
	if err != nil {
		return "", fmt.Errorf("write tools.sh: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(toolsScript); err != nil {
		f.Close()
		return "", fmt.Errorf("write tools.sh: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write tools.sh: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bash, append([]string{f.Name()}, args...)...)
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("tools.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(lastLines(stderr.String(), 20)))
	}
	return stdout.String(), nil
}

// argoCDCRDs caches ArgoCDCRDDir's answer.
var argoCDCRDs struct {
	sync.Mutex
	dir string
}

// ArgoCDCRDDir returns the directory holding the Application, AppProject and
// ApplicationSet CRDs (manifests/crds) of the pinned Argo CD version in the Go
// module cache, downloading the module if needed (tools.sh crds-dir).
func ArgoCDCRDDir() (string, error) {
	argoCDCRDs.Lock()
	defer argoCDCRDs.Unlock()
	if argoCDCRDs.dir != "" {
		return argoCDCRDs.dir, nil
	}
	out, err := runToolsScript("crds-dir")
	if err != nil {
		return "", fmt.Errorf("testenv: locate the Argo CD CRDs: %w", err)
	}
	dir := strings.TrimSpace(out)
	if _, err := os.Stat(filepath.Join(dir, "application-crd.yaml")); err != nil {
		return "", fmt.Errorf("testenv: locate the Argo CD CRDs: %w", err)
	}
	argoCDCRDs.dir = dir
	return dir, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// installTool mirrors install_one in tools.sh.
func installTool(spec ToolSpec, bin string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go toolchain not found: %w", err)
	}
	dir := filepath.Dir(bin)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create tool directory: %w", err)
	}
	stage, err := os.MkdirTemp(dir, ".stage.")
	if err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	defer os.RemoveAll(stage)
	work, err := os.MkdirTemp("", "ferry-tools-")
	if err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	defer os.RemoveAll(work)

	cmd := exec.Command(goBin, "install", spec.Package+"@"+spec.Version)
	cmd.Dir = work
	cmd.Env = append(filterEnv(os.Environ(), "GOBIN", "GOFLAGS", "GOWORK"),
		"GOBIN="+stage, "GOFLAGS=-mod=mod", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go install %s@%s: %w\n%s", spec.Package, spec.Version, err, out.String())
	}
	built := filepath.Join(stage, spec.Name)
	if !isExecutable(built) {
		return fmt.Errorf("go install %s@%s produced no %s binary", spec.Package, spec.Version, spec.Name)
	}
	if err := os.Rename(built, bin); err != nil {
		return fmt.Errorf("move %s into place: %w", spec.Name, err)
	}
	return nil
}

// filterEnv returns env without the variables named in drop.
func filterEnv(env []string, drop ...string) []string {
	out := make([]string, 0, len(env))
outer:
	for _, kv := range env {
		key, _, _ := strings.Cut(kv, "=")
		for _, d := range drop {
			if key == d {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}
