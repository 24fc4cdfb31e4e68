package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
)

// LockFileName is the file [Pull] writes next to the extracted layers.
const LockFileName = "ferry.lock.json"

// Extraction errors returned (wrapped, with the entry name) by [Pull].
var (
	// ErrUnsafeArchive reports an absolute path, "..", a link leaving the directory, a device file or
	// another entry that must not be extracted.
	ErrUnsafeArchive = archive.ErrUnsafeEntry
	// ErrArchiveLimit reports an archive over the entry-count, size or ratio limits.
	ErrArchiveLimit = archive.ErrLimitExceeded
	// ErrInvalidArchive reports a layer that is not a well-formed archive (truncated, corrupt, a zip
	// entry whose content does not match its size or CRC-32).
	ErrInvalidArchive = archive.ErrInvalidArchive
)

// Limits bounds what [Pull] extracts from one layer. Zero fields take the role's default (see
// [DefaultLimits]); a field set applies to every role pulled.
type Limits struct {
	// MaxEntries bounds the entries (files, directories, links) of one layer.
	MaxEntries int
	// MaxFileSize bounds the bytes of one extracted file.
	MaxFileSize int64
	// MaxTotalSize bounds the bytes extracted from one layer.
	MaxTotalSize int64
	// MaxRatio bounds how many times larger than its compressed form a layer or a zip entry may
	// expand, once past 8 MiB.
	MaxRatio int64
}

// DefaultLimits returns the extraction limits of a layer role, sized for real releases: Kubernetes
// manifests are text (etcd stores at most 1.5 MiB per object), Terraform modules are small source
// trees, plugins may be binaries. No real release expands 100 times; zeros expand about 1,000 times.
func DefaultLimits(role string) Limits {
	switch role {
	case RoleManifests:
		return Limits{MaxEntries: 10000, MaxFileSize: 64 << 20, MaxTotalSize: 512 << 20, MaxRatio: archive.DefaultMaxRatio}
	case RoleTerraform:
		return Limits{MaxEntries: 10000, MaxFileSize: 256 << 20, MaxTotalSize: 1 << 30, MaxRatio: archive.DefaultMaxRatio}
	default:
		return Limits{MaxEntries: 10000, MaxFileSize: 1 << 30, MaxTotalSize: 2 << 30, MaxRatio: archive.DefaultMaxRatio}
	}
}

// forRole returns l with the unset fields taken from the role's defaults.
func (l Limits) forRole(role string) archive.Limits {
	d := DefaultLimits(role)
	pick := func(set, def int64) int64 {
		if set > 0 {
			return set
		}
		return def
	}
	return archive.Limits{
		MaxEntries:   int(pick(int64(l.MaxEntries), int64(d.MaxEntries))),
		MaxFileSize:  pick(l.MaxFileSize, d.MaxFileSize),
		MaxTotalSize: pick(l.MaxTotalSize, d.MaxTotalSize),
		MaxRatio:     pick(l.MaxRatio, d.MaxRatio),
	}
}

// PullOptions contains parameters for [Pull].
type PullOptions struct {
	// Only selects layer roles (see [Roles]); empty means every layer of the bundle.
	Only []string
	// Limits bounds extraction.
	Limits Limits
	// Concurrency limits concurrent downloads. If <= 0, 3 is used.
	Concurrency int
	// OnProgress, if set, is called for each blob, and with the bytes moved while the layers are
	// downloaded and extracted (see [ProgressBytes]). It may be called concurrently.
	OnProgress func(ProgressEvent)
}

// Lock is the content of ferry.lock.json: what was pulled, pinned.
type Lock struct {
	LockVersion int         `json:"lockVersion"`
	Bundle      LockBundle  `json:"bundle"`
	Images      []ImageLock `json:"images"`
}

// LockBundle identifies the pulled bundle.
type LockBundle struct {
	Reference       string   `json:"reference"`
	Digest          string   `json:"digest"`
	PinnedReference string   `json:"pinnedReference"`
	Name            string   `json:"name"`
	Version         string   `json:"version"`
	Created         string   `json:"created"`
	Source          string   `json:"source,omitempty"`
	Revision        string   `json:"revision,omitempty"`
	Roles           []string `json:"roles"`
}

// PullResult describes a pull.
type PullResult struct {
	*Info
	// Dir is the output directory; each role is extracted into Dir/<role>.
	Dir string `json:"dir"`
	// Roles are the extracted roles.
	Roles []string `json:"roles"`
	// LockFile is the path of ferry.lock.json.
	LockFile string `json:"lockFile"`
}

// Pull fetches the bundle ref, verifies every digest and extracts the selected layers into
// dir/manifests, dir/terraform and dir/plugins, refusing unsafe entries and archive bombs, then writes
// dir/ferry.lock.json.
//
// Nothing Pull did not create is changed or removed: a role directory that exists and is not empty, a
// file or symlink where a role directory or the lock file goes, and an existing lock file are errors
// that name them, checked before any download (an empty role directory is replaced). Every write goes
// through an [os.Root] at a staging directory inside dir, so no name can reach outside it; the layers
// are moved into place only when all of them succeeded, and a failure (or a cancelled ctx) leaves dir as
// it was, removed again if Pull created it.
func Pull(ctx context.Context, c *Client, ref Reference, dir string, opts PullOptions) (*PullResult, error) {
	for _, r := range opts.Only {
		if !slices.Contains(Roles(), r) {
			return nil, fmt.Errorf("only: %w: unknown layer %s; use %s", ErrInvalidReference, archive.Quote(r), strings.Join(Roles(), ", "))
		}
	}
	info, err := Inspect(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	var layers []LayerInfo
	for _, l := range info.Layers {
		if len(opts.Only) == 0 || slices.Contains(opts.Only, l.Role) {
			layers = append(layers, l)
		}
	}
	for _, r := range opts.Only {
		if !slices.ContainsFunc(layers, func(l LayerInfo) bool { return l.Role == r }) {
			return nil, fmt.Errorf("%s: %w: the bundle has no %s layer", ref, ErrNotFound, r)
		}
	}
	out, err := openOutput(dir)
	if err != nil {
		return nil, err
	}
	defer out.close()
	res := &PullResult{Info: info, Dir: dir, LockFile: filepath.Join(dir, LockFileName), Roles: []string{}}
	for _, l := range layers {
		res.Roles = append(res.Roles, l.Role)
	}
	if err := out.checkFree(res.Roles); err != nil {
		return nil, out.fail(err)
	}
	if err := out.stage(); err != nil {
		return nil, out.fail(err)
	}

	concurrency := opts.Concurrency
	if concurrency <= 0 {
		concurrency = 3
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, l := range layers {
		g.Go(func() error {
			desc := layerDescriptor(info.manifest, l.Digest)
			if opts.OnProgress != nil {
				opts.OnProgress(ProgressEvent{Action: ProgressDownload, Title: l.Title, Descriptor: desc})
			}
			if err := c.retry(gctx, func() error {
				return fetchAndExtract(gctx, info, desc, l.Role, out.staging, opts.Limits.forRole(l.Role), opts.OnProgress)
			}); err != nil {
				return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: layer %s", ref, l.Title), err)
			}
			if opts.OnProgress != nil {
				opts.OnProgress(ProgressEvent{Action: ProgressDone, Title: l.Title, Descriptor: desc})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, out.fail(err)
	}
	lock := Lock{
		LockVersion: 1,
		Bundle: LockBundle{
			Reference: info.Reference, Digest: info.Digest, PinnedReference: info.PinnedReference,
			Name: info.Name, Version: info.Version, Created: info.Created, Source: info.Source, Revision: info.Revision,
			Roles: res.Roles,
		},
		Images: info.Images,
	}
	data, err := json.MarshalIndent(lock, "", "  ")
	if err != nil {
		return nil, out.fail(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, out.fail(err)
	}
	if err := out.commit(res.Roles, append(data, '\n')); err != nil {
		return nil, out.fail(err)
	}
	return res, nil
}

func layerDescriptor(m ocispec.Manifest, d string) ocispec.Descriptor {
	for _, l := range m.Layers {
		if l.Digest.String() == d {
			return l
		}
	}
	return ocispec.Descriptor{}
}

// fetchAndExtract downloads one layer, verifying its digest and size, and extracts it into staging/role
// (removed and made anew on each attempt). A tar+gzip layer is extracted while it streams and only kept
// when the digest verifies; a zip layer is first written to a verified temporary file in staging.
// onProgress, if set, is told the bytes downloaded and, for a zip layer, extracted.
func fetchAndExtract(ctx context.Context, info *Info, desc ocispec.Descriptor, role string, staging *os.Root, limits archive.Limits, onProgress func(ProgressEvent)) error {
	if err := staging.RemoveAll(role); err != nil {
		return err
	}
	if err := staging.Mkdir(role, 0o755); err != nil {
		return err
	}
	dest, err := staging.OpenRoot(role)
	if err != nil {
		return err
	}
	defer dest.Close()
	rc, err := info.target.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	title := desc.Annotations[AnnotationTitle]
	vr := content.NewVerifyReader(newMeter(onProgress, ProgressDownload, title, desc.Size).reader(rc), desc)
	if desc.MediaType == MediaTypeManifests {
		if err := archive.ExtractTarGzIn(ctx, vr, dest, limits); err != nil {
			if verr := drainVerify(vr); verr != nil {
				return verr
			}
			return err
		}
		return drainVerify(vr)
	}
	blob := role + ".blob"
	f, err := staging.OpenFile(blob, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer staging.Remove(blob)
	defer f.Close()
	if _, err := io.Copy(f, vr); err != nil {
		return mismatch(err)
	}
	if err := vr.Verify(); err != nil {
		return mismatch(err)
	}
	// Counted as the extractor reads the archive: about its size, the central directory read twice.
	return archive.ExtractZipIn(ctx, newMeter(onProgress, ProgressExtract, title, desc.Size).readerAt(f), desc.Size, dest, limits)
}

// drainVerify reads what the extractor left (gzip trailer, tar padding) and verifies the digest.
func drainVerify(vr *content.VerifyReader) error {
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return mismatch(err)
	}
	return mismatch(vr.Verify())
}

func mismatch(err error) error {
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return fmt.Errorf("%w: %v", ErrDigestMismatch, err)
	}
	return err
}
