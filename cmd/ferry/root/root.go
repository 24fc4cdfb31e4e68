// Package root builds ferry's command tree.
package root

import (
	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/app"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/window"
)

// New returns the root command.
func New(version string) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "ferry",
		Short:         "Ship release candidates as one OCI bundle and deploy them per customer with Argo CD",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	cmd.AddCommand(bundle.New(), app.New(), window.New(), loginCmd(), logoutCmd(), versionCmd(version))
	return cmd
}
