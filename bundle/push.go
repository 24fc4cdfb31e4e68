package bundle

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/structpb"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry"
)

// PushOptions contains parameters for [Push].
type PushOptions struct {
	PackOptions
	// Tags are extra tags. The tag of the reference is applied first; a reference without a tag
	// is tagged with the bundle version (with '+' written as '_').
	Tags []string
	// Concurrency limits concurrent blob uploads. If <= 0, 4 is used.
	Concurrency int
	// OnProgress, if set, is called for each step, and with the bytes moved while the layers are
	// packed and uploaded (see [ProgressBytes]). It may be called concurrently.
	OnProgress func(ProgressEvent)
	// SignKey, if set, signs the manifest: the signature is attached as a referrer after the
	// manifest and before any tag moves, so a failed signature moves no tag (docs/signing.md).
	SignKey *SigningKey
}

// PushResult describes a pushed bundle.
type PushResult struct {
	// Reference is the destination name (host/repo or oci-layout:PATH).
	Reference string `json:"reference"`
	// Digest is the manifest digest.
	Digest string `json:"digest"`
	// PinnedReference is Reference@Digest.
	PinnedReference string `json:"pinnedReference"`
	// Tags are the tags now pointing at Digest.
	Tags []string `json:"tags"`
	// Signature is the digest of the signature's referrer manifest, when signed.
	Signature string `json:"signature,omitempty"`
	// Attestations are the signed attestations attached with the signature (SBOM, provenance).
	Attestations []Attached `json:"attestations,omitempty"`
	// MediaType, ArtifactType and Size describe the manifest.
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Size         int64  `json:"size"`
	// Name and Version come from ferry.yaml.
	Name    string `json:"name"`
	Version string `json:"version"`
	Created string `json:"created"`
	// Images is the images lock.
	Images []ImageLock `json:"images"`
	// Layers lists the layers with their roles.
	Layers []LayerInfo `json:"layers"`
	// Rewrites lists the image references pinned in the manifests.
	Rewrites []Rewrite `json:"rewrites"`
	// Uploaded and Skipped count the blobs (config and layers) uploaded and already present.
	Uploaded int `json:"uploaded"`
	Skipped  int `json:"skipped"`
}

// DefaultTag returns the tag used for version when none is given: the version with '+' (semver build
// metadata) written as '_', as Argo CD, Helm and OpenTofu expect.
func DefaultTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// Push packs the release directory dir (see [Pack]) and publishes it to ref: blobs first, skipping
// those the target has, then the manifest by digest, then the tags, all or none: a failure before the
// tags leaves every tag where it was, and a tag that fails has the tags moved before it put back on
// their previous digests (or removed, when they were new); the error says what became of each.
// Transient registry failures (5xx, 429, 408, dropped, stalled or timed-out connections) are retried
// with backoff; the error says after how many attempts it gave up.
func Push(ctx context.Context, c *Client, dir string, ref Reference, opts PushOptions) (*PushResult, error) {
	if ref.Digest != "" {
		return nil, fmt.Errorf("%s: %w: a push destination takes a tag, not a digest", ref, ErrInvalidReference)
	}
	var tags []string
	for _, t := range append([]string{ref.Tag}, opts.Tags...) {
		if t == "" || contains(tags, t) {
			continue
		}
		if err := (registry.Reference{Registry: "x", Repository: "x", Reference: t}).ValidateReferenceAsTag(); err != nil {
			return nil, fmt.Errorf("tag %q: %w: use letters, digits, '_', '.', '-' (at most 128)", t, ErrInvalidReference)
		}
		tags = append(tags, t)
	}
	p, err := pack(ctx, c, dir, opts.PackOptions, opts.OnProgress)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if ref.Tag == "" && !contains(tags, DefaultTag(p.Spec.Version)) {
		tags = append([]string{DefaultTag(p.Spec.Version)}, tags...)
	}
	res := &PushResult{
		Reference:       ref.Name(),
		Digest:          p.Manifest.Digest.String(),
		PinnedReference: ref.Pinned(p.Manifest.Digest.String()),
		MediaType:       p.Manifest.MediaType,
		ArtifactType:    p.Manifest.ArtifactType,
		Size:            p.Manifest.Size,
		Name:            p.Config.Name,
		Version:         p.Config.Version,
		Created:         p.Config.Created,
		Images:          p.Config.Images,
		Layers:          p.Config.Layers,
		Rewrites:        p.Rewrites,
	}
	if res.Rewrites == nil {
		res.Rewrites = []Rewrite{}
	}
	var signed []Attached
	if res.Uploaded, res.Skipped, signed, err = Publish(ctx, c, p, ref, tags, opts); err != nil {
		return nil, err
	}
	for _, a := range signed {
		if a.PredicateType == PredicateCosignSign {
			res.Signature = a.Referrer
		} else {
			res.Attestations = append(res.Attestations, a)
		}
	}
	res.Tags = tags
	return res, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Publish copies a packed bundle to ref, signs it with opts.SignKey if set, and tags it, in the
// order that never leaves a tag on an incomplete or unsigned bundle, all tags or none (see
// [Push]), and returns how many blobs were uploaded and skipped, and the signed referrers attached:
// the signature, the SBOM and the provenance (see [Packed.SBOM], [Packed.Provenance]).
func Publish(ctx context.Context, c *Client, p *Packed, ref Reference, tags []string, opts PushOptions) (uploaded, skipped int, signed []Attached, err error) {
	concurrency, onProgress := opts.Concurrency, opts.OnProgress
	if concurrency <= 0 {
		concurrency = 4
	}
	emit := func(action, title string, desc ocispec.Descriptor) {
		if onProgress != nil {
			onProgress(ProgressEvent{Action: action, Title: title, Descriptor: desc})
		}
	}
	dst, err := c.target(ref, true)
	if err != nil {
		return 0, 0, nil, err
	}
	wrap := func(what string, err error) error {
		return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("push %s to %s", what, ref.Name()), err)
	}
	// The SBOM hashes every plugin file again: done while the blobs upload.
	attestations := func() (map[string]*structpb.Struct, error) { return nil, nil }
	if opts.SignKey != nil {
		done := make(chan struct{})
		var predicates map[string]*structpb.Struct
		var perr error
		go func() {
			defer close(done)
			predicates, perr = p.attestations(p.started)
		}()
		attestations = func() (map[string]*structpb.Struct, error) {
			<-done
			return predicates, perr
		}
		defer attestations() //nolint:errcheck // never leave the goroutine reading p's files after Publish returns
	}
	var nUp, nSkip atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, desc := range p.Blobs() {
		title := desc.Annotations[AnnotationTitle]
		if title == "" {
			title = "config"
		}
		g.Go(func() error {
			var exists bool
			if err := c.retry(gctx, func() (err error) {
				exists, err = dst.Exists(gctx, desc)
				return err
			}); err != nil {
				return wrap(title, err)
			}
			if exists {
				nSkip.Add(1)
				emit(ProgressSkip, title, desc)
				return nil
			}
			emit(ProgressUpload, title, desc)
			if err := c.retry(gctx, func() error {
				rc, err := p.Open(desc)
				if err != nil {
					return err
				}
				defer rc.Close()
				// Counted as the target reads them: the bytes on their way to the registry.
				return dst.Push(gctx, desc, newMeter(onProgress, ProgressUpload, title, desc.Size).reader(rc))
			}); err != nil && !isAlreadyExists(err) {
				return wrap(title, err)
			}
			nUp.Add(1)
			emit(ProgressUploaded, title, desc)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return int(nUp.Load()), int(nSkip.Load()), signed, err
	}
	// The manifest by digest: after it every blob it names is in place, and no tag has moved yet.
	if err := c.retry(ctx, func() error {
		exists, err := dst.Exists(ctx, p.Manifest)
		if err != nil || exists {
			return err
		}
		return dst.Push(ctx, p.Manifest, bytes.NewReader(p.ManifestJSON))
	}); err != nil && !isAlreadyExists(err) {
		return int(nUp.Load()), int(nSkip.Load()), signed, wrap("manifest", err)
	}
	emit(ProgressManifest, "manifest", p.Manifest)
	if opts.SignKey != nil {
		if signed, err = attachSigned(ctx, c, dst, p, opts.SignKey, attestations, emit); err != nil {
			return int(nUp.Load()), int(nSkip.Load()), signed, wrap("signature", err)
		}
	}
	if err := c.moveTags(ctx, dst, ref, p, tags, func(tag string) { emit(ProgressTag, tag, p.Manifest) }); err != nil {
		return int(nUp.Load()), int(nSkip.Load()), signed, err
	}
	return int(nUp.Load()), int(nSkip.Load()), signed, nil
}

// Attached is a signed referrer attached to a bundle: a signature or an attestation.
type Attached struct {
	PredicateType string `json:"predicateType"`
	// Referrer is the digest of the referrer manifest.
	Referrer string `json:"referrer"`
}

// attachSigned attaches the SBOM, the provenance and then the signature of p's manifest, each
// signed by key, and reports each as ProgressSignature. attestations returns the predicates
// (computed while the blobs upload).
func attachSigned(ctx context.Context, c *Client, dst oras.Target, p *Packed, key *SigningKey, attestations func() (map[string]*structpb.Struct, error), emit func(action, title string, desc ocispec.Descriptor)) ([]Attached, error) {
	predicates, err := attestations()
	if err != nil {
		return nil, err
	}
	var out []Attached
	for _, t := range []string{PredicateCycloneDX, PredicateSLSAProvenance, PredicateCosignSign} {
		var desc ocispec.Descriptor
		if err := c.retry(ctx, func() (err error) {
			desc, err = attachStatement(ctx, dst, p.Manifest, key, time.Now(), t, predicates[t])
			return err
		}); err != nil {
			return out, err
		}
		emit(ProgressSignature, statementTitle(t), desc)
		out = append(out, Attached{PredicateType: t, Referrer: desc.Digest.String()})
	}
	return out, nil
}

// statementTitle names a signed statement in progress and listings.
func statementTitle(predicateType string) string {
	switch predicateType {
	case PredicateCosignSign:
		return "signature"
	case PredicateCycloneDX:
		return "sbom"
	case PredicateSLSAProvenance:
		return "provenance"
	}
	return predicateType
}
