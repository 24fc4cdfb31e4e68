package root

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/version"
)

// versionResult is the JSON shape of `ferry version`.
type versionResult struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func versionCmd(v string) *cobra.Command {
	var format option.Format
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the ferry version",
		Long: `Print the version of this ferry binary: a release's version (as in its archive's name), or
"dev" for a build from source.

Example - The version alone, then with the commit, Go version and platform as JSON:
  ferry version
  ferry version --format json`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return format.Parse(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			res := versionResult{Version: v, Commit: version.Commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			return format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, v)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&format.Type, "format", "text", "output format: text, json, or go-template=TEMPLATE")
	return cmd
}
