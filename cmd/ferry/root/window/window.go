// Package window holds the `ferry window` commands.
package window

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// New returns the `ferry window` command.
func New() *cobra.Command {
	cmd := &cobra.Command{Use: "window", Short: "Explain a customer's deployment windows"}
	cmd.AddCommand(checkCmd())
	return cmd
}

type checkOptions struct {
	option.Kube
	option.Format
	environment string
	at          string
}

// checkResult is the JSON shape of `ferry window check`.
type checkResult struct {
	Environment string  `json:"environment"`
	At          string  `json:"at"`
	Open        bool    `json:"open"`
	Reason      string  `json:"reason"`
	Window      string  `json:"window,omitempty"`
	NextOpen    *string `json:"nextOpen"`
	NextClose   *string `json:"nextClose"`
}

func checkCmd() *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check --environment NAME",
		Short: "Say whether an environment's deployment window is open, why, and when it next opens",
		Long: `Read the environment's live AppProject and evaluate its sync windows (Argo CD semantics, for a
manual sync such as ferry's) at --at or now. Exits 0 when open and 4 when closed.

Example - Gate a pipeline step on the customer's window:
  ferry window check --environment acme || echo "closed: try later"

Example - Ask about a future time, as JSON:
  ferry window check --environment acme --at 2026-12-24T10:00:00Z --format json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if opts.environment == "" {
				return option.Usagef("ferry window check --environment NAME", "", errors.New("--environment is required"))
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Kube.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runCheck(cmd, &opts) },
	}
	cmd.Flags().StringVar(&opts.environment, "environment", "", "environment (AppProject) name")
	cmd.Flags().StringVar(&opts.at, "at", "", "time to evaluate, RFC 3339 (default now)")
	opts.Kube.ApplyFlags(cmd.Flags())
	opts.Format.ApplyFlags(cmd.Flags())
	return cmd
}

func runCheck(cmd *cobra.Command, opts *checkOptions) error {
	at := time.Now()
	if opts.at != "" {
		t, err := time.Parse(time.RFC3339, opts.at)
		if err != nil {
			return option.Usagef("--at 2026-11-26T10:00:00Z", "use RFC 3339", fmt.Errorf("--at %q is not RFC 3339", opts.at))
		}
		at = t
	}
	c, err := opts.Kube.Client()
	if err != nil {
		return err
	}
	p, err := c.GetProject(cmd.Context(), opts.environment)
	switch {
	case errors.Is(err, argocd.ErrNotFound):
		return &option.Error{Err: err, Code: option.ExitPermanent, Recommendation: "Check the environment name and --argocd-namespace."}
	case err != nil:
		// Refused or unobtainable credentials, a certificate that does not verify: permanent;
		// an unreachable cluster: transient, with a hint from the cause.
		return opts.Kube.APIError(err)
	}
	specs, err := argocd.ProjectWindows(p)
	var ws []window.Window
	if err == nil {
		ws, err = window.Parse(specs, func(i int) string { return fmt.Sprintf("syncWindows[%d]", i) })
	}
	if err != nil {
		return &option.Error{Err: fmt.Errorf("environment %s has invalid deployment windows: %w", opts.environment, err), Code: option.ExitPermanent}
	}
	st := window.Evaluate(ws, at, true)
	res := checkResult{Environment: opts.environment, At: at.UTC().Format(time.RFC3339), Open: st.Open, Reason: st.Reason, Window: st.Window,
		NextOpen: rfc3339(st.NextOpen), NextClose: rfc3339(st.NextClose)}
	if err := opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error {
		state := "open"
		if !st.Open {
			state = "closed"
		}
		fmt.Fprintf(w, "Deployment window for %s is %s at %s: %s\n", opts.environment, state, res.At, st.Reason)
		if st.Open && res.NextClose != nil {
			fmt.Fprintf(w, "Next closes: %s (in %s)\n", *res.NextClose, st.NextClose.Sub(at).Round(time.Minute))
		}
		if !st.Open {
			if res.NextOpen != nil {
				fmt.Fprintf(w, "Next opens:  %s (in %s)\n", *res.NextOpen, st.NextOpen.Sub(at).Round(time.Minute))
			} else {
				fmt.Fprintln(w, "Next opens:  not within five years")
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if !st.Open {
		return &option.Error{Err: fmt.Errorf("deployment window closed for %s", opts.environment), Code: option.ExitWindow, Recommendation: st.Reason}
	}
	return nil
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}
