package bundle

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/display"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

type pullOptions struct {
	option.Remote
	option.Format
	ref    bundle.Reference
	output string
	only   []string
	limits bundle.Limits
}

func pullCmd() *cobra.Command {
	var opts pullOptions
	cmd := &cobra.Command{
		Use:   "pull REF -o DIR",
		Short: "Download a bundle, verify it and extract its layers safely",
		Long: `Download a bundle, verify every digest and extract its layers into DIR/manifests,
DIR/terraform and DIR/plugins, then write DIR/ferry.lock.json (the bundle digest and images lock).
Absolute paths, "..", links leaving DIR, device files and archive bombs are refused.

Example - Pull only the Terraform module of a pinned bundle:
  ferry bundle pull registry.example.com/shop/bundle@sha256:… -o ./shop --only terraform`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.ref, err = parseRef(args[0], "ferry bundle pull REF -o DIR"); err != nil {
				return err
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runPull(cmd, &opts) },
	}
	fs := cmd.Flags()
	fs.StringVarP(&opts.output, "output", "o", "", "directory to extract into (required)")
	_ = cmd.MarkFlagRequired("output")
	fs.StringSliceVar(&opts.only, "only", nil, "layers to extract: manifests, terraform, plugins (default all)")
	fs.IntVar(&opts.limits.MaxEntries, "max-entries", 100000, "most entries extracted from one layer")
	fs.Int64Var(&opts.limits.MaxFileSize, "max-file-size", 1<<30, "largest file extracted, in bytes")
	fs.Int64Var(&opts.limits.MaxTotalSize, "max-total-size", 4<<30, "most bytes extracted from one layer")
	opts.Remote.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

func runPull(cmd *cobra.Command, opts *pullOptions) error {
	client, err := opts.Remote.Client()
	if err != nil {
		return err
	}
	res, err := bundle.Pull(cmd.Context(), client, opts.ref, opts.output, bundle.PullOptions{
		Only:       opts.only,
		Limits:     opts.limits,
		OnProgress: display.Progress(opts.Format.Progress(cmd.ErrOrStderr())),
	})
	if err != nil {
		return err
	}
	return opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return display.PullText(w, res) })
}
