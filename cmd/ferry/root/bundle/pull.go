package bundle

import (
	"fmt"
	"io"
	"slices"
	"strings"

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
Absolute paths, "..", links leaving DIR, device files and archive bombs are refused, and so is
anything already at DIR/manifests, DIR/terraform, DIR/plugins or DIR/ferry.lock.json (but an empty
directory): a failed pull leaves DIR as it was. The limits default per layer (docs/bundle-format.md).

Example - Pull only the Terraform module of a pinned bundle:
  ferry bundle pull registry.example.com/shop/bundle@sha256:… -o ./shop --only terraform`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.ref, err = parseRef(args[0], "ferry bundle pull REF -o DIR"); err != nil {
				return err
			}
			for _, role := range opts.only {
				if !slices.Contains(bundle.Roles(), role) {
					hint := "name layer roles: " + strings.Join(bundle.Roles(), ", ")
					for _, r := range bundle.Roles() {
						if strings.HasPrefix(r, role) || strings.HasPrefix(role, r) {
							hint = "did you mean --only " + r + "? The layer roles are " + strings.Join(bundle.Roles(), ", ")
						}
					}
					return option.Usagef("ferry bundle pull REF -o DIR --only ROLE[,ROLE]", hint, fmt.Errorf("--only %s: not a layer role", role))
				}
			}
			for _, name := range []string{"max-entries", "max-ratio"} { // sizes refuse it when set (option.SizeVar)
				if v := cmd.Flags().Lookup(name).Value.String(); strings.HasPrefix(v, "-") {
					return option.Usagef("ferry bundle pull REF -o DIR --"+name+" N", "Give a positive number, or leave the flag out for the default.",
						fmt.Errorf("--%s %s: must be positive", name, v))
				}
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
	fs.IntVar(&opts.limits.MaxEntries, "max-entries", 0, "most entries extracted from one layer (default 10000)")
	option.SizeVar(fs, &opts.limits.MaxFileSize, "max-file-size", 0, "largest file extracted: bytes or a number with a unit, e.g. 100MiB or 1GB (default 64MiB for manifests, 256MiB for terraform, 1GiB for plugins)")
	option.SizeVar(fs, &opts.limits.MaxTotalSize, "max-total-size", 0, "most bytes extracted from one layer, e.g. 2GiB (default 512MiB for manifests, 1GiB for terraform, 2GiB for plugins)")
	fs.Int64Var(&opts.limits.MaxRatio, "max-ratio", 0, "most times a layer or zip entry may expand over its compressed size, past 8 MiB (default 100)")
	opts.Remote.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

func runPull(cmd *cobra.Command, opts *pullOptions) error {
	client, err := opts.Remote.Client(opts.ref.Registry)
	if err != nil {
		return err
	}
	onProgress, stopProgress := display.Live(opts.Format.Progress(cmd.ErrOrStderr()))
	res, err := bundle.Pull(cmd.Context(), client, opts.ref, opts.output, bundle.PullOptions{
		Only:       opts.only,
		Limits:     opts.limits,
		OnProgress: onProgress,
	})
	stopProgress() // the bars go before the result or the error is printed
	if err != nil {
		return err
	}
	return opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return display.PullText(w, res) })
}
