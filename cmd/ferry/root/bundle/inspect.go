package bundle

import (
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/display"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

type inspectOptions struct {
	option.Remote
	option.Format
	ref bundle.Reference
}

func inspectCmd() *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Show a bundle's name, version, digest, images, layers and annotations",
		Long: `Show a bundle: name, version, digest, created, source, the images lock, the layers with
their roles, media types and sizes, and the annotations. Only the manifest and config are read.

Example - Inspect a bundle in a local OCI layout:
  ferry bundle inspect oci-layout:/tmp/shop:1.4.0

Example - Get the digest in a script:
  ferry bundle inspect registry.example.com/shop/bundle:1.4.0 --format go-template='{{.digest}}'`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.ref, err = parseRef(args[0], "ferry bundle inspect REF"); err != nil {
				return err
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runInspect(cmd, &opts) },
	}
	opts.Remote.ApplyFlags(cmd.Flags())
	opts.Format.ApplyFlags(cmd.Flags())
	return cmd
}

func runInspect(cmd *cobra.Command, opts *inspectOptions) error {
	client, err := opts.Remote.Client(opts.ref.Registry)
	if err != nil {
		return err
	}
	info, err := bundle.Inspect(cmd.Context(), client, opts.ref)
	if err != nil {
		return err
	}
	if info.Referrers, err = bundle.ListReferrers(cmd.Context(), client, opts.ref, info.Digest); err != nil {
		return err
	}
	if slices.ContainsFunc(info.Referrers, func(r bundle.ReferrerInfo) bool { return r.ArtifactType == bundle.MediaTypeRelocation }) {
		if info.Relocation, err = bundle.ReadRelocation(cmd.Context(), client, opts.ref, info); err != nil {
			return err
		}
	}
	return opts.Format.Render(cmd.OutOrStdout(), info, func(w io.Writer) error { return display.InfoText(w, info) })
}
