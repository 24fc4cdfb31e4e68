package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// grapher copies graphs (a root, what it references and what refers to it) and counts.
type grapher struct {
	c    *Client
	opts CopyOptions
	res  *CopyResult
	// verify checks every blob read against its digest (archive and layout sources: a registry
	// destination checks too, but its refusal would not say the archive is at fault).
	verify bool

	mu     sync.Mutex
	placed map[string][]string // digest -> destination repositories that hold it, for mounts
}

// copy copies the graph of root from from to to (the repository toRepo of the destination
// registry): root, what it references and what refers to it. With only set, an index's manifests
// are limited to those only accepts (see [copyPlatforms]).
func (g *grapher) copy(ctx context.Context, title string, from oras.ReadOnlyGraphTarget, to oras.GraphTarget, toRepo string, root ocispec.Descriptor, mountFrom []string, only func(ocispec.Descriptor) bool) error {
	emit := func(action string, desc ocispec.Descriptor) {
		if g.opts.OnProgress != nil {
			g.opts.OnProgress(ProgressEvent{Action: action, Title: title, Descriptor: desc})
		}
	}
	var copied, skipped, mounted, referrers atomic.Int64
	var bytes atomic.Int64
	place := func(desc ocispec.Descriptor) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !slices.Contains(g.placed[desc.Digest.String()], toRepo) {
			g.placed[desc.Digest.String()] = append(g.placed[desc.Digest.String()], toRepo)
		}
	}
	opts := oras.ExtendedCopyGraphOptions{CopyGraphOptions: oras.CopyGraphOptions{
		Concurrency: g.opts.Concurrency,
		PreCopy:     func(_ context.Context, desc ocispec.Descriptor) error { emit(ProgressUpload, desc); return nil },
		PostCopy: func(_ context.Context, desc ocispec.Descriptor) error {
			copied.Add(1)
			bytes.Add(desc.Size)
			place(desc)
			emit(ProgressUploaded, desc)
			return nil
		},
		OnCopySkipped: func(_ context.Context, desc ocispec.Descriptor) error {
			skipped.Add(1)
			place(desc)
			emit(ProgressSkip, desc)
			return nil
		},
		MountFrom: func(_ context.Context, desc ocispec.Descriptor) ([]string, error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			var repos []string
			for _, r := range append(slices.Clone(g.placed[desc.Digest.String()]), mountFrom...) {
				if r != toRepo && !slices.Contains(repos, r) {
					repos = append(repos, r)
				}
			}
			return repos, nil
		},
		OnMounted: func(_ context.Context, desc ocispec.Descriptor) error {
			mounted.Add(1)
			place(desc)
			emit(ProgressMount, desc)
			return nil
		},
	}}
	// Referrers of the root, but not earlier relocation records: a record describes the copy that
	// wrote it, and this copy writes its own.
	opts.FindPredecessors = func(ctx context.Context, src content.ReadOnlyGraphStorage, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		preds, err := src.Predecessors(ctx, desc)
		if err != nil {
			return nil, err
		}
		preds = slices.DeleteFunc(preds, func(p ocispec.Descriptor) bool { return p.ArtifactType == MediaTypeRelocation })
		if desc.Digest == root.Digest {
			referrers.Store(int64(len(preds)))
		}
		return preds, nil
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if only != nil {
		opts.FindSuccessors = func(ctx context.Context, fetcher content.Fetcher, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			succ, err := content.Successors(ctx, fetcher, desc)
			if err != nil || !isIndex(desc.MediaType) {
				return succ, err
			}
			return slices.DeleteFunc(succ, func(d ocispec.Descriptor) bool { return d.Platform != nil && !only(d) }), nil
		}
	}
	err := g.c.retry(ctx, func() error {
		copied.Store(0)
		skipped.Store(0)
		mounted.Store(0)
		bytes.Store(0)
		var src content.ReadOnlyGraphStorage = from
		if g.verify {
			src = verifyingSource{from}
		}
		return oras.ExtendedCopyGraph(ctx, src, to, root, opts)
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	g.res.Copied += int(copied.Load())
	g.res.Skipped += int(skipped.Load())
	g.res.Mounted += int(mounted.Load())
	g.res.Bytes += bytes.Load()
	g.res.Referrers += int(referrers.Load())
	return err
}

// verifyingSource checks every blob it serves against its digest as it is read: a tampered
// archive fails the copy with ErrDigestMismatch before the destination accepts the blob. (From a
// registry the destination's own check suffices: a registry and an OCI layout both refuse a blob
// whose content does not match its digest.)
type verifyingSource struct{ oras.ReadOnlyGraphTarget }

func (v verifyingSource) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := v.ReadOnlyGraphTarget.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	return &verifyingReader{ReadCloser: rc, vr: content.NewVerifyReader(rc, desc), desc: desc}, nil
}

type verifyingReader struct {
	io.ReadCloser
	vr   *content.VerifyReader
	desc ocispec.Descriptor
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.vr.Read(p)
	if errors.Is(err, io.EOF) {
		err = r.vr.Verify()
		if err == nil {
			return n, io.EOF
		}
	}
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return n, fmt.Errorf("%s: %w: %v", r.desc.Digest, ErrDigestMismatch, err)
	}
	return n, err
}

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}
