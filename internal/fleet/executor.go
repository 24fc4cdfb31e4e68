package fleet

import (
	"context"
	"io"
)

// Target is one customer environment of a fleet.
type Target struct {
	// Name is the environment's name: its Argo CD AppProject (ferry_environment's name).
	Name string `json:"name"`
	// Application is the Argo CD Application the target's deployment ends in; default Name.
	Application string `json:"application,omitempty"`
	// Labels select targets and order waves (fleet.yaml's labels, or the AppProject's labels).
	Labels map[string]string `json:"labels,omitempty"`
	// Dir is the target's Terraform root module directory (terraform executor), relative to the
	// fleet.yaml it was read from or absolute.
	Dir string `json:"dir,omitempty"`
	// Workspace is the target's Terraform workspace (terraform executor, optional) or HCP
	// Terraform workspace (hcp-terraform executor, default Name).
	Workspace string `json:"workspace,omitempty"`
}

// AppName returns the name of the target's Application.
func (t Target) AppName() string {
	if t.Application != "" {
		return t.Application
	}
	return t.Name
}

// Bundle is what a rollout deploys.
type Bundle struct {
	// Reference is the repository, host/path, without tag or digest.
	Reference string `json:"reference"`
	// Digest is the bundle manifest's digest, sha256:…; targets are done when their Application
	// is synced to it.
	Digest string `json:"digest"`
	// Version is the bundle's version (ferry.yaml), for people; may be empty.
	Version string `json:"version,omitempty"`
}

// Pinned returns the bundle's reference pinned by digest, host/path@sha256:….
func (b Bundle) Pinned() string { return b.Reference + "@" + b.Digest }

// Executor applies a bundle to one target: it runs whatever ends with the target's Application
// at the bundle's digest (a terraform apply, an Argo CD sync, a pipeline trigger). It writes what
// it runs and prints to out (kept per target). An error that carries a failure class (an
// *argocd.SyncError, or a *ClassError) is reported with that class; the rollout then reads the
// live Application to decide the target's state, so an executor that returns nil for a target
// whose Application did not reach the digest still fails it.
type Executor interface {
	// Name is the executor's type as fleet.yaml writes it: terraform, sync, command, hcp-terraform.
	Name() string
	Apply(ctx context.Context, t Target, b Bundle, out io.Writer) error
}

// ClassError is an executor failure with a failure class of the sync engine (argocd.Class, as a
// string: transient, permanent, …) and the detail to show.
type ClassError struct {
	Class string
	Err   error
}

func (e *ClassError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ClassError) Unwrap() error { return e.Err }
