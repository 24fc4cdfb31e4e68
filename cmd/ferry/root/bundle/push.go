package bundle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/display"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

const pushUsage = "ferry bundle push DIR REF [--tag T]..."

type pushOptions struct {
	option.Remote
	option.Format
	dir         string
	ref         bundle.Reference
	tags        []string
	created     string
	offline     bool
	concurrency int
	signKey     option.SignKey
}

func pushCmd() *cobra.Command {
	opts := pushOptions{signKey: option.SignKey{Name: "sign-key"}}
	cmd := &cobra.Command{
		Use:   "push DIR REF",
		Short: "Pack a release directory into one OCI artifact and push it",
		Long: `Pack a release directory (with ferry.yaml at its root) into one OCI artifact and push it.

Every image tag of ferry.yaml is resolved to a digest against its own registry and every image field
of the manifests is pinned to it. Blobs are uploaded first (skipping those the registry has), then the
manifest, then the tags, so a failed push never moves a tag. The same directory and the same
SOURCE_DATE_EPOCH (or --created) give the same digest.

Example - Push to a registry, tagged with the version and "latest":
  ferry bundle push ./release registry.example.com/shop/bundle:1.4.0 --tag latest

Example - Pack into a local OCI image layout, without contacting any registry:
  ferry bundle push ./release oci-layout:/tmp/shop:1.4.0 --offline

Example - Sign at push, attaching the SBOM and the provenance too, before any tag moves (the key's
password in $FERRY_KEY_PASSWORD; --sign-key-password-stdin reads it from standard input):
  ferry bundle push ./release registry.example.com/shop/bundle:1.4.0 --sign-key cosign.key

Example - Print the result as JSON for CI:
  ferry bundle push ./release registry.example.com/shop/bundle:1.4.0 --format json`,
		Args: cobra.ExactArgs(2),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.dir = args[0]
			if err := checkPushArgs(args[0], args[1]); err != nil {
				return err
			}
			var err error
			if opts.ref, err = parseRef(args[1], pushUsage); err != nil {
				return err
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runPush(cmd, &opts) },
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&opts.tags, "tag", "t", nil, "extra tag to point at the bundle (repeatable)")
	fs.StringVar(&opts.created, "created", "", "creation time (RFC 3339); default SOURCE_DATE_EPOCH, then the git commit time, then 1970-01-01T00:00:00Z")
	fs.BoolVar(&opts.offline, "offline", false, "contact no image registry: digest-pinned images are locked as written, tags are an error")
	fs.IntVar(&opts.concurrency, "concurrency", 4, "concurrent blob uploads")
	opts.signKey.ApplyFlags(fs, "private key to sign the bundle with")
	opts.Remote.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

func runPush(cmd *cobra.Command, opts *pushOptions) error {
	var created time.Time
	if opts.created != "" {
		t, err := time.Parse(time.RFC3339, opts.created)
		if err != nil {
			return option.Usagef(pushUsage, "use RFC 3339, e.g. 2026-11-26T00:00:00Z", fmt.Errorf("--created %q is not an RFC 3339 time", opts.created))
		}
		created = t
	}
	key, err := opts.signKey.Load(cmd)
	if err != nil {
		return err
	}
	client, err := opts.Remote.Client(opts.ref.Registry)
	if err != nil {
		return err
	}
	onProgress, stopProgress := display.Live(opts.Format.Progress(cmd.ErrOrStderr()))
	res, err := bundle.Push(cmd.Context(), client, opts.dir, opts.ref, bundle.PushOptions{
		PackOptions: bundle.PackOptions{Created: created, Offline: opts.offline},
		Tags:        opts.tags,
		Concurrency: opts.concurrency,
		OnProgress:  onProgress,
		SignKey:     key,
	})
	stopProgress() // the bars go before the result or the error is printed
	if err != nil {
		return err
	}
	return opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return display.PushText(w, res) })
}

// checkPushArgs catches the two ways DIR REF is commonly mistyped: the release's ferry.yaml named
// instead of its directory, and the two arguments swapped.
func checkPushArgs(dir, ref string) error {
	if filepath.Base(dir) == bundle.SpecFileName {
		return option.Usagef(pushUsage, fmt.Sprintf("DIR is the release directory that holds ferry.yaml: ferry bundle push %s %s", filepath.Dir(dir), ref),
			fmt.Errorf("DIR %s names the ferry.yaml file, not its directory", dir))
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if st, err := os.Stat(ref); err == nil && st.IsDir() {
			return option.Usagef(pushUsage, fmt.Sprintf("the first argument is the release directory, the second the reference: ferry bundle push %s %s", ref, dir),
				fmt.Errorf("DIR %s does not exist, and REF %s is a directory", dir, ref))
		}
	}
	return nil
}
