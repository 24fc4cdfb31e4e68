package fleet

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/yamlspec"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// ExecutorEnv is what an executor's constructor may need besides its settings.
type ExecutorEnv struct {
	// File is the fleet.yaml's name as given to ParseSpec ("" in a sync-only rollout), for errors.
	File string
	// Dir is the fleet.yaml's directory: targets' relative dirs are relative to it.
	Dir string
	// Client is the Argo CD client of the rollout (the sync executor needs it).
	Client *argocd.Client
	// SyncOptions tune the sync engine where an executor runs it (the sync executor).
	SyncOptions argocd.SyncOptions
}

// Errorf returns a *SpecError about the executor's setting field (a key of the settings
// mapping, e.g. "binary"; "" for the block), at node's line. Constructors report their settings'
// problems with it, so they name file, line and field like the rest of fleet.yaml.
func (env ExecutorEnv) Errorf(node *yaml.Node, field, format string, args ...any) error {
	line := 0
	if node != nil {
		line = node.Line
	}
	return &SpecError{File: env.File, Line: line, Field: yamlspec.JoinField("executor", field), Msg: fmt.Sprintf(format, args...)}
}

// ExecutorFactory builds an executor from its settings: the executor block of fleet.yaml without
// its type field, a yaml mapping node with line numbers (nil when the block has no other field).
// It validates the settings strictly (an unknown field is an error, reported with env.Errorf).
type ExecutorFactory func(settings *yaml.Node, env ExecutorEnv) (Executor, error)

// executorFactories maps an executor type to its constructor. Each executor file registers its
// own in an init function:
//
//	func init() { executorFactories["terraform"] = newTerraformExecutor }
//
// so that a type whose file is absent is reported as unavailable rather than breaking the build.
var executorFactories = map[string]ExecutorFactory{
	"sync": newSyncExecutorFromSettings,
}

// executorTypes are the types fleet.yaml accepts, registered or not, in the docs' order.
var executorTypes = []string{"terraform", "sync", "command", "hcp-terraform"}

// ExecutorTypes lists the executor types fleet.yaml accepts.
func ExecutorTypes() []string { return slices.Clone(executorTypes) }

// NewExecutor returns the executor of type typ built from its settings (see ExecutorFactory).
// typ "" is DefaultExecutor.
func NewExecutor(typ string, settings *yaml.Node, env ExecutorEnv) (Executor, error) {
	if typ == "" {
		typ = DefaultExecutor
	}
	f, ok := executorFactories[typ]
	if !ok {
		if slices.Contains(executorTypes, typ) {
			return nil, fmt.Errorf("executor %q is not available in this build of ferry", typ)
		}
		return nil, env.Errorf(nil, "type", "unknown executor %q; use one of %s", typ, strings.Join(executorTypes, ", "))
	}
	return f(settings, env)
}
