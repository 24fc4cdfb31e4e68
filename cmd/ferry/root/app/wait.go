package app

import (
	"fmt"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

type waitOptions struct {
	option.Kube
	option.Format
	engineFlags
	name, digest string
}

// digestRE is a bundle digest, what --revision takes.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func waitCmd() *cobra.Command {
	var opts waitOptions
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait until an application is Synced at its digest and Healthy, or fails",
		Long: `Wait, without requesting anything, until the application is Synced at exactly its pinned digest
(or --revision) and Healthy, or a failure class is certain. A stale Synced at another revision is never
success.

Example - Wait for an automated sync to reach the pinned digest:
  ferry app wait shop-acme --timeout 15m`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			if err := opts.engineFlags.validate(); err != nil {
				return err
			}
			if opts.digest != "" && !digestRE.MatchString(opts.digest) {
				return option.Usagef("--revision sha256:DIGEST", "give the bundle digest, as ferry bundle push prints it", fmt.Errorf("--revision %q is not a sha256 digest", opts.digest))
			}
			return opts.Kube.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.Kube.Client()
			if err != nil {
				return err
			}
			digest := opts.digest
			if digest == "" {
				live, err := c.GetApplication(cmd.Context(), opts.name)
				if err != nil {
					return classError(err, &opts.Kube)
				}
				digest = argocd.AppFromLive(live).Digest
			}
			res, err := c.Wait(cmd.Context(), opts.name, digest, opts.engineFlags.options(opts.Format.Progress(cmd.ErrOrStderr())))
			return render(cmd, &opts.Format, &opts.Kube, res, err)
		},
	}
	cmd.Flags().StringVar(&opts.digest, "revision", "", "digest to wait for (default: the application's targetRevision)")
	opts.engineFlags.apply(cmd.Flags())
	opts.Kube.ApplyFlags(cmd.Flags())
	opts.Format.ApplyFlags(cmd.Flags())
	return cmd
}
