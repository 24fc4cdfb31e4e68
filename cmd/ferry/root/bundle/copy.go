package bundle

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/display"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/mirror"
)

const copyUsage = "ferry bundle copy SRC DST | SRC --to-archive FILE | --from-archive FILE DST"

type copyOptions struct {
	option.Remote
	option.Format
	src, dst    bundle.Reference
	toArchive   string
	fromArchive string
	mirrorDir   string
	concurrency int
	platforms   []string
}

func copyCmd() *cobra.Command {
	var opts copyOptions
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy a bundle with all its images, signatures and attestations to another registry or an archive",
		Long: `Copy the bundle SRC names, every image it pins (an index with all its platforms) and every
referrer of both (signatures, SBOM, provenance) to the repository DST, or into an OCI image layout
archive (--to-archive FILE.tar) that crosses an air gap and is copied on from there
(--from-archive FILE.tar DST). Digests never change, so signatures still verify with the same keys.

In a registry the images go to DST/images/<original repository> (a port's ':' written as '-'),
tagged with their original tags, and a relocation record, attached to the bundle as a referrer,
maps each original image reference to its relocated one (ferry bundle inspect lists it). Blobs the
destination has are not sent again, blobs it has in another repository are mounted; tags move last,
so an interrupted copy leaves nothing new tagged, and the same copy run again finishes it. An
archive is staged in FILE.tar.partial and appears whole or not at all. Every blob read from an
archive is checked against its digest. Credentials come from the Docker configuration, per
registry (ferry login).

Example - Relocate a release candidate into a customer's registry:
  ferry bundle copy registry.example.com/shop/bundle:1.4.0 registry.acme.internal/shop/bundle

With --platform os/arch (repeatable), an image index is copied whole — its digest unchanged —
but with only those platforms' manifests; the result says which, and that the copy is partial.
The destination must accept an index whose other manifests it lacks (CNCF Distribution:
validation.manifests.indexes.platforms none or list).

With --mirror-config DIR, it also writes the registry mirror configuration with which a cluster
pulls the original image references from the copy, no manifest rewritten (docs/air-gap.md):
DIR/containerd/certs.d/<host>/hosts.toml and DIR/crio/registries.conf.d/50-ferry-mirror-<host>.conf.

Example - Across an air gap:
  ferry bundle copy registry.example.com/shop/bundle:1.4.0 --to-archive shop-1.4.0.tar
  ferry bundle copy --from-archive shop-1.4.0.tar registry.acme.internal/shop/bundle`,
		Args: cobra.RangeArgs(1, 2),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			switch {
			case opts.toArchive != "" && opts.fromArchive != "":
				return option.Usagef(copyUsage, "copy into an archive on one side of the air gap and from it on the other", errors.New("--to-archive and --from-archive are exclusive"))
			case opts.toArchive != "" && len(args) == 1:
				opts.src, err = parseRef(args[0], copyUsage)
			case opts.fromArchive != "" && len(args) == 1:
				opts.dst, err = parseRef(args[0], copyUsage)
			case opts.toArchive == "" && opts.fromArchive == "" && len(args) == 2:
				if opts.src, err = parseRef(args[0], copyUsage); err == nil {
					opts.dst, err = parseRef(args[1], copyUsage)
				}
			default:
				return option.Usagef(copyUsage, "", errors.New("give SRC and DST, SRC with --to-archive, or DST with --from-archive"))
			}
			if err == nil && opts.mirrorDir != "" && (opts.toArchive != "" || opts.dst.IsLayout()) {
				return option.Usagef(copyUsage, "write it where the archive is copied into the customer's registry", errors.New("--mirror-config needs a registry destination"))
			}
			if err != nil {
				return err
			}
			for _, p := range opts.platforms {
				if _, err := bundle.ParsePlatform(p); err != nil {
					return option.Usagef(copyUsage, "", fmt.Errorf("--platform: %w", err))
				}
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := opts.Remote.Client(opts.src.Registry, opts.dst.Registry)
			if err != nil {
				return err
			}
			onProgress, stopProgress := display.Live(opts.Format.Progress(cmd.ErrOrStderr()))
			copyOpts := bundle.CopyOptions{Concurrency: opts.concurrency, OnProgress: onProgress}
			for _, p := range opts.platforms {
				pl, _ := bundle.ParsePlatform(p)
				copyOpts.Platforms = append(copyOpts.Platforms, pl)
			}
			var res *bundle.CopyResult
			switch {
			case opts.toArchive != "":
				res, err = bundle.CopyToArchive(cmd.Context(), client, opts.src, opts.toArchive, copyOpts)
			case opts.fromArchive != "":
				res, err = bundle.CopyFromArchive(cmd.Context(), client, opts.fromArchive, opts.dst, copyOpts)
			default:
				res, err = bundle.Copy(cmd.Context(), client, opts.src, opts.dst, copyOpts)
			}
			stopProgress()
			if err != nil {
				return err
			}
			if opts.mirrorDir != "" {
				if res.MirrorConfig, err = writeMirrorConfig(opts, res); err != nil {
					return err
				}
			}
			return opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return display.CopyText(w, res) })
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.toArchive, "to-archive", "", "write an OCI image layout archive (tar) at `FILE` instead of copying to a registry")
	fs.StringVar(&opts.fromArchive, "from-archive", "", "copy from the archive `FILE` (written by --to-archive)")
	fs.StringVar(&opts.mirrorDir, "mirror-config", "", "write containerd hosts.toml and CRI-O registries.conf files below `DIR` that pull the original image references from the copy")
	fs.StringArrayVar(&opts.platforms, "platform", nil, "copy only this `os/arch[/variant]` of each image index (the index itself whole); repeatable")
	fs.IntVar(&opts.concurrency, "concurrency", 4, "concurrent blob copies")
	opts.Remote.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

// writeMirrorConfig writes the mirror files of a copy to a registry.
func writeMirrorConfig(opts copyOptions, res *bundle.CopyResult) ([]string, error) {
	rel := mirror.Relocation{Registry: opts.dst.Registry, Repository: opts.dst.Repository,
		PlainHTTP: opts.PlainHTTP || slices.Contains(opts.PlainHTTPRegistries, opts.dst.Registry)}
	for _, im := range res.Images {
		host, _, _ := strings.Cut(im.From, "/")
		rel.Hosts = append(rel.Hosts, host)
	}
	files, err := rel.Write(opts.mirrorDir)
	for i, f := range files {
		files[i] = filepath.Join(opts.mirrorDir, f)
	}
	return files, err
}
