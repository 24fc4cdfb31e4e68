package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

func terminateCmd() *cobra.Command {
	var kube option.Kube
	cmd := &cobra.Command{
		Use:   "terminate NAME",
		Short: "Terminate the running operation of an application",
		Long: `Terminate the running operation of an application, as the Argo CD API server does (only when one
runs, with a resourceVersion precondition). Argo CD ends it as Failed "Operation terminated". A window-
blocked operation terminates only when its window opens (an Argo CD behaviour).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := kube.Client()
			if err != nil {
				return err
			}
			if err := c.Terminate(cmd.Context(), args[0]); err != nil {
				return classError(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Terminating the operation of %s\n", args[0])
			return err
		},
	}
	kube.ApplyFlags(cmd.Flags())
	return cmd
}
