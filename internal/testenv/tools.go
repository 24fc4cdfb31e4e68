package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ToolSpec pins one binary that the test environment runs.
type ToolSpec struct {
	// Name is the binary's name and its key in the cache ("registry", "oras").
	Name string
	// Package is the Go package path passed to go install.
	Package string
	// Version is the module version passed to go install.
	Version string
}

// Tools mirrors the pin table in tools.sh, which is the source of truth;
// TestToolsTableMatchesScript fails when the two disagree.
var Tools = []ToolSpec{
	{Name: "registry", Package: "github.com/distribution/distribution/v3/cmd/registry", Version: "v3.0.0"},
	{Name: "oras", Package: "oras.land/oras/cmd/oras", Version: "v1.3.0"},
}

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

// ToolPath returns where the pinned binary name lives in the cache
// (<ToolsDir>/<name>-<version>/<name>), whether or not it is installed.
func ToolPath(name string) (string, error) {
	spec, err := lookupTool(name)
	if err != nil {
		return "", err
	}
	root, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, spec.Name+"-"+spec.Version, spec.Name), nil
}

func lookupTool(name string) (ToolSpec, error) {
	names := make([]string, 0, len(Tools))
	for _, spec := range Tools {
		if spec.Name == name {
			return spec, nil
		}
		names = append(names, spec.Name)
	}
	sort.Strings(names)
	return ToolSpec{}, fmt.Errorf("testenv: unknown tool %q (known: %s)", name, strings.Join(names, ", "))
}

// toolBuilds serialises builds of the same tool within this process.
var toolBuilds sync.Map // name -> *sync.Mutex

// Tool returns the path of a cached pinned binary ("registry", "oras"),
// building it with tools.sh semantics when missing: go install into the cache
// directory (respecting FERRY_TOOLS_DIR) from an empty working directory, so
// the project's go.mod is never touched. The error names `make tools`.
func Tool(name string) (string, error) {
	spec, err := lookupTool(name)
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
	mu, _ := toolBuilds.LoadOrStore(name, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if isExecutable(bin) { // built by a concurrent caller
		return bin, nil
	}
	if err := installTool(spec, bin); err != nil {
		return "", fmt.Errorf("testenv: %s %s is not installed at %s and building it failed "+
			"(run `make tools`, i.e. internal/testenv/tools.sh install %s): %w",
			spec.Name, spec.Version, bin, spec.Name, err)
	}
	return bin, nil
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
