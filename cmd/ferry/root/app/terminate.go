package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

func terminateCmd() *cobra.Command {
	var kube option.Kube
	cmd := &cobra.Command{
		Use:   "terminate NAME",
		Short: "Terminate the running operation of an application",
		Long: `Terminate the running operation of an application, as the Argo CD API server does (only when one
runs, with a resourceVersion precondition). Argo CD ends it as Failed "Operation terminated". A window-
blocked operation terminates only when its window opens (an Argo CD behaviour). An operation that is
requested but not yet started by the controller is withdrawn instead, so it never runs.`,
		Args:    cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, _ []string) error { return kube.Parse(cmd) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := kube.Client()
			if err != nil {
				return err
			}
			stopped, err := c.Terminate(cmd.Context(), args[0])
			if err != nil {
				return classError(err, &kube)
			}
			msg := "Terminating the operation of %s\n"
			if stopped == argocd.Withdrawn {
				msg = "Withdrew the operation requested on %s, which Argo CD had not started\n"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), msg, args[0])
			return err
		},
	}
	kube.ApplyFlags(cmd.Flags())
	return cmd
}
