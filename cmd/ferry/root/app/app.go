// Package app holds the `ferry app` commands: the sync engine of the Terraform provider for callers
// outside Terraform.
package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
)

// New returns the `ferry app` command.
func New() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Sync, wait for, inspect and terminate Argo CD applications with ferry's sync engine",
	}
	cmd.AddCommand(syncCmd(), waitCmd(), statusCmd(), terminateCmd())
	return cmd
}

// engineFlags are the knobs shared by sync and wait.
type engineFlags struct {
	timeout       time.Duration
	healthTimeout time.Duration
	stuckAfter    time.Duration
}

func (f *engineFlags) apply(fs *pflag.FlagSet) {
	// The defaults are the engine's (argocd.DefaultSyncOptions); docs/cli.md states them.
	fs.DurationVar(&f.timeout, "timeout", argocd.DefaultTimeout, "give up after this long (sync then terminates or withdraws its own operation)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", argocd.DefaultHealthTimeout, "how long the app may take to become Healthy after the operation")
	fs.DurationVar(&f.stuckAfter, "stuck-after", argocd.DefaultStuckAfter, "terminate an operation that shows the same message this long")
	// Help shows "(default 20m)", as the docs write durations, rather than "(default 20m0s)".
	for _, name := range []string{"timeout", "health-timeout", "stuck-after"} {
		fl := fs.Lookup(name)
		d, _ := time.ParseDuration(fl.DefValue)
		fl.DefValue = argocd.ShortDuration(d)
	}
}

// validate refuses a duration that is not positive, naming the flag, before any request.
func (f *engineFlags) validate() error {
	for _, fl := range []struct {
		name string
		d    time.Duration
	}{{"--timeout", f.timeout}, {"--health-timeout", f.healthTimeout}, {"--stuck-after", f.stuckAfter}} {
		if fl.d <= 0 {
			return option.Usagef(fl.name+" DURATION", "use a positive duration with its unit, e.g. 90s or 5m", fmt.Errorf("%s %v is not positive", fl.name, fl.d))
		}
	}
	return nil
}

func (f *engineFlags) options(progress io.Writer) argocd.SyncOptions {
	o := argocd.SyncOptions{Timeout: f.timeout, HealthTimeout: f.healthTimeout, StuckAfter: f.stuckAfter, RunID: os.Getenv("TFC_RUN_ID")}
	if progress != nil {
		o.OnProgress = func(s string) { fmt.Fprintln(progress, s) }
	}
	return o
}

// classError turns an engine error into a CLI error with the class's exit code; an error of an
// API call ferry made itself (no class) is transient or permanent as k.APIError says. The
// engine's hint about a lost connection names no flag; k's names them.
func classError(err error, k *option.Kube) error {
	var se *argocd.SyncError
	if !errors.As(err, &se) {
		if errors.Is(err, argocd.ErrNotFound) {
			return &option.Error{Err: err, Code: option.ExitPermanent, Recommendation: "Create the application first (ferry_application in Terraform), or check --argocd-namespace."}
		}
		return k.APIError(err)
	}
	code := option.ClassCode(se.Class)
	detail := se.Detail()
	if generic, named := capitalized(kube.Hint(se)), capitalized(k.Hint(se)); generic != "" {
		detail = strings.Replace(detail, generic, named, 1)
	}
	return &option.Error{Err: fmt.Errorf("%s [%s]", se.Error(), se.Class), Recommendation: detail, Code: code}
}

func capitalized(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// outcome is the JSON shape of sync and wait results.
type outcome struct {
	Class     string            `json:"class"`
	Result    *argocd.Result    `json:"result,omitempty"`
	Error     string            `json:"error,omitempty"`
	Resources []argocd.Resource `json:"resources,omitempty"`
	NextOpen  string            `json:"nextOpen,omitempty"`
	RequestID string            `json:"requestId,omitempty"`
}

// render prints a sync or wait outcome and returns the error to exit with.
func render(cmd *cobra.Command, f *option.Format, k *option.Kube, res *argocd.Result, err error) error {
	o := outcome{Class: string(argocd.ClassSuccess), Result: res}
	var se *argocd.SyncError
	if errors.As(err, &se) {
		o = outcome{Class: string(se.Class), Error: se.Error(), Resources: se.Resources, RequestID: se.RequestID}
		if se.NextOpen != nil {
			o.NextOpen = se.NextOpen.UTC().Format(time.RFC3339)
		}
	} else if err != nil {
		return classError(err, k)
	}
	if f.Type != "text" {
		if rerr := f.Render(cmd.OutOrStdout(), o, nil); rerr != nil {
			return rerr
		}
		if err != nil {
			ce := classError(err, k)
			return &option.Error{Err: errors.New(se.Error()), Code: option.ExitCode(ce), Recommendation: ce.(*option.Error).Recommendation}
		}
		return nil
	}
	if err != nil {
		return classError(err, k)
	}
	retried := ""
	if res.Retries > 0 {
		retried = fmt.Sprintf(", after %d transient retries", res.Retries)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s at %s (operation %s: %s%s)\n", res.Name, res.SyncStatus, res.HealthStatus, res.Revision, res.LastOperation.Phase, res.LastOperation.Message, retried)
	return nil
}
