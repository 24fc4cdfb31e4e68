package app

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

type syncOptions struct {
	option.Kube
	option.Format
	engineFlags
	name           string
	bundleRef      string
	windowPolicy   string
	overrideReason string
	noWait         bool
	registries     option.Registries
}

func syncCmd() *cobra.Command {
	var opts syncOptions
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync an application to its bundle digest and wait until it is Synced and Healthy",
		Long: `Sync an Argo CD application to its bundle digest through the operation field, never overwriting
a running operation, and wait until it is Synced at exactly that digest and Healthy — or fail with
the class of failure (exit codes in docs/cli.md).

Example - Sync to the digest the application pins:
  ferry app sync shop-acme

Example - Re-pin to a new bundle and sync, waiting for the deployment window if it is closed:
  ferry app sync shop-acme --bundle registry.example.com/shop/bundle@sha256:… --window-policy wait`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			if err := opts.engineFlags.validate(); err != nil {
				return err
			}
			switch argocd.WindowPolicy(opts.windowPolicy) {
			case argocd.WindowFail, argocd.WindowWait, argocd.WindowOverride:
			default:
				return option.Usagef("--window-policy "+strings.Join(argocd.WindowPolicies(), "|"), "", fmt.Errorf("invalid --window-policy %q", opts.windowPolicy))
			}
			if opts.windowPolicy == string(argocd.WindowOverride) && strings.TrimSpace(opts.overrideReason) == "" {
				return option.Usagef("--window-policy override --override-reason TEXT", "say why the deployment window may be ignored; it is recorded", fmt.Errorf("--override-reason is required with --window-policy override"))
			}
			if err := opts.registries.Parse(); err != nil {
				return err
			}
			return opts.Kube.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runSync(cmd, &opts) },
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.bundleRef, "bundle", "", "digest-pinned bundle (host/repo@sha256:…) to pin the application to before syncing")
	fs.StringVar(&opts.windowPolicy, "window-policy", string(argocd.DefaultWindowPolicy), "when the deployment window is closed: "+strings.Join(argocd.WindowPolicies(), ", "))
	fs.StringVar(&opts.overrideReason, "override-reason", "", "why an override may ignore the window (recorded in the operation info, the ferry.dev/last-override annotation and an Event)")
	fs.BoolVar(&opts.noWait, "no-wait", false, "request the sync and return without waiting")
	opts.engineFlags.apply(fs)
	opts.registries.ApplyFlags(fs)
	opts.Kube.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

func runSync(cmd *cobra.Command, opts *syncOptions) error {
	c, err := opts.Kube.Client()
	if err != nil {
		return err
	}
	live, err := c.GetApplication(cmd.Context(), opts.name)
	if err != nil {
		return classError(err, &opts.Kube)
	}
	a := argocd.AppFromLive(live)
	if opts.bundleRef != "" {
		ref, err := bundle.ParseReference(opts.bundleRef)
		if err != nil || ref.Digest == "" || ref.IsLayout() {
			return option.Usagef("--bundle host/repo@sha256:…", "use data.ferry_bundle.X.pinned_reference or the pinnedReference printed by ferry bundle push", fmt.Errorf("--bundle %q must be a digest-pinned registry reference", opts.bundleRef))
		}
		a.RepoURL, a.Digest = ref.OCIURL(), ref.Digest
	}
	so := opts.engineFlags.options(opts.Format.Progress(cmd.ErrOrStderr()))
	so.WindowPolicy = argocd.WindowPolicy(opts.windowPolicy)
	so.OverrideReason = opts.overrideReason
	// An environment with a signature policy has the bundle's signature verified first.
	rc, err := opts.registries.Client()
	if err != nil {
		return err
	}
	so.VerifyBundle = bundle.Verifier(rc)
	res, err := c.Sync(cmd.Context(), a, !opts.noWait, so)
	return render(cmd, &opts.Format, &opts.Kube, res, err)
}
