package fleet

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExampleFleets: the fleets in examples/fleet parse, their executors are built from their
// settings, and the local fleet's target dirs exist.
func TestExampleFleets(t *testing.T) {
	t.Setenv("TFE_TOKEN", "example-token")
	for _, name := range []string{"local", "hcp-terraform"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "examples", "fleet", name, "fleet.yaml")
			spec, err := LoadSpec(path)
			if err != nil {
				t.Fatalf("LoadSpec(%s) error = %v", path, err)
			}
			ex, err := NewExecutor(spec.Executor.Type, spec.Executor.Settings, ExecutorEnv{File: path, Dir: spec.Dir})
			if err != nil {
				t.Fatalf("NewExecutor(%s) error = %v", spec.Executor.Type, err)
			}
			if ex.Name() != spec.Executor.Type {
				t.Errorf("executor %s, want %s", ex.Name(), spec.Executor.Type)
			}
			for _, target := range spec.Targets {
				if target.Dir == "" {
					continue
				}
				if _, err := os.Stat(filepath.Join(spec.Dir, target.Dir, "main.tf")); err != nil {
					t.Errorf("target %s: %v", target.Name, err)
				}
			}
		})
	}
}
