// Package bundle holds the `ferry bundle` commands.
package bundle

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

// New returns the `ferry bundle` command.
func New() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Push, pull and inspect release bundles (one OCI artifact per release candidate)",
	}
	cmd.AddCommand(pushCmd(), pullCmd(), inspectCmd())
	return cmd
}

func parseRef(arg, usage string) (bundle.Reference, error) {
	ref, err := bundle.ParseReference(arg)
	if err != nil {
		return ref, option.Usagef(usage, fmt.Sprintf("write it as host/repo:tag, host/repo@sha256:… or %sPATH[:tag]", bundle.LayoutPrefix), err)
	}
	return ref, nil
}
