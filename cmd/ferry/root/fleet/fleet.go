// Package fleet holds the `ferry fleet` commands: where a bundle is across the customers'
// environments, and rolling it out to them.
package fleet

import "github.com/spf13/cobra"

// New returns the `ferry fleet` command.
func New() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "See where a bundle is across the fleet, and roll it out to many environments",
	}
	cmd.AddCommand(statusCmd(), rolloutCmd())
	return cmd
}
