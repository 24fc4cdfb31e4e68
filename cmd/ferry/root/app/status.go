package app

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// statusView is what `ferry app status` shows: the Application's status and its last override.
type statusView struct {
	*argocd.Status
	LastOverride *argocd.OverrideRecord `json:"lastOverride,omitempty"`
}

type statusOptions struct {
	option.Kube
	option.Format
	name string
}

func statusCmd() *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show an application's sync and health status, revision and last operation",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Kube.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.Kube.Client()
			if err != nil {
				return err
			}
			// An application an interrupted override left in the windowless override project
			// is moved back first (a warning says so). A cluster that cannot be reached fails the
			// command here, once: reading the status would only repeat the same attempts.
			msg, err := c.RepairOverride(cmd.Context(), opts.name)
			switch {
			case err != nil && !argocd.PermanentAPIError(err):
				return classError(err, &opts.Kube)
			case err != nil:
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: could not check for an interrupted override: %v\n", err)
			case msg != "":
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", msg)
			}
			st, err := c.Status(cmd.Context(), opts.name)
			if err != nil {
				return classError(err, &opts.Kube)
			}
			s := statusView{Status: st}
			// The durable audit record of the last window override (annotation ferry.dev/last-override).
			if s.LastOverride, err = c.LastOverride(cmd.Context(), opts.name); err != nil {
				return classError(err, &opts.Kube)
			}
			return opts.Format.Render(cmd.OutOrStdout(), s, func(w io.Writer) error {
				health := strings.TrimSpace(s.HealthStatus + " " + s.HealthMessage)
				fmt.Fprintf(w, "Name:       %s\nProject:    %s\nSource:     %s @ %s\nSync:       %s at %s\nHealth:     %s\nReconciled: %s\n",
					s.Name, s.Project, s.RepoURL, s.TargetRevision, s.SyncStatus, s.Revision, health, s.ReconciledAt)
				if op := s.LastOperation; op != nil {
					fmt.Fprintf(w, "Operation:  %s by %s (request %s), started %s, finished %s, retries %d\n            %s\n",
						op.Phase, op.InitiatedBy, op.RequestID, op.StartedAt, op.FinishedAt, op.RetryCount, op.Message)
				}
				if o := s.LastOverride; o != nil {
					fmt.Fprintf(w, "Last override: %s by %s to %s (request %s): %s\n            window: %s\n",
						o.At, o.By, o.Revision, o.RequestID, o.Reason, o.Window)
				}
				if len(s.Conditions) > 0 {
					fmt.Fprintf(w, "Conditions:\n  %s\n", strings.Join(s.Conditions, "\n  "))
				}
				return nil
			})
		},
	}
	opts.Kube.ApplyFlags(cmd.Flags())
	opts.Format.ApplyFlags(cmd.Flags())
	return cmd
}
