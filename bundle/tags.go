package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// restoreTimeout bounds putting tags back after a failed push, which runs even when the push's
// context was cancelled.
const restoreTimeout = 2 * time.Minute

// moveTags points every tag at the pushed manifest, all or none. It first records where each tag
// points (or that it is new); when a tag fails, it puts the tags it already moved back on their
// previous digests and removes those that were new, and the error says, tag by tag, what it did.
// onMoved is called for each tag that now points at the manifest.
func (c *Client) moveTags(ctx context.Context, dst oras.Target, ref Reference, p *Packed, tags []string, onMoved func(tag string)) error {
	prev := make([]*ocispec.Descriptor, len(tags)) // nil: the tag is new
	for i, tag := range tags {
		if err := c.retry(ctx, func() error {
			d, err := dst.Resolve(ctx, tag)
			if errors.Is(err, errdef.ErrNotFound) {
				return nil
			}
			if err == nil {
				prev[i] = &d
			}
			return err
		}); err != nil {
			return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("push: read tag %s of %s", tag, ref.Name()), err)
		}
	}
	for i, tag := range tags {
		if prev[i] != nil && prev[i].Digest == p.Manifest.Digest {
			onMoved(tag) // already there
			continue
		}
		err := c.retry(ctx, func() error { return tagManifest(ctx, dst, p, tag) })
		if err == nil {
			onMoved(tag)
			continue
		}
		// A tag the registry refused did not move; after a dropped connection, a timeout or a
		// cancellation it may have, so it is put back too.
		undo := i
		var resp *errcode.ErrorResponse
		if !errors.As(err, &resp) || isTransientStatus(resp.StatusCode) {
			undo = i + 1
		}
		report := c.restoreTags(ctx, dst, p, tags[:undo], prev[:undo], tag)
		for _, t := range tags[i+1:] {
			report = append(report, t+" not moved")
		}
		return &TagsError{Err: c.wrap(bundleClass, ref.Registry, fmt.Sprintf("push tag %s to %s", tag, ref.Name()), err), Report: report}
	}
	return nil
}

// TagsError is a failed tag step of [Push]: the tag error, and what became of each tag.
type TagsError struct {
	Err error
	// Report says, tag by tag, what the push did to restore it (empty: no tag moved).
	Report []string
}

func (e *TagsError) Error() string { return e.Err.Error() + "; " + e.Outcome() }

// Unwrap returns the tag error.
func (e *TagsError) Unwrap() error { return e.Err }

// Outcome is "no tag moved" or "tags: " and the report.
func (e *TagsError) Outcome() string {
	if len(e.Report) == 0 {
		return "no tag moved"
	}
	return "tags: " + strings.Join(e.Report, "; ")
}

// restoreTags puts each tag back on prev (removes it when prev is nil) and describes the outcome of
// each, in order. failed is the tag whose push failed: it may or may not have moved.
func (c *Client) restoreTags(ctx context.Context, dst oras.Target, p *Packed, tags []string, prev []*ocispec.Descriptor, failed string) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	var report []string
	for i, tag := range tags {
		left := "left on"
		if tag == failed {
			left = "may be on"
		}
		switch {
		case prev[i] != nil && prev[i].Digest == p.Manifest.Digest:
			report = append(report, tag+" unchanged")
		case prev[i] != nil:
			if err := c.retry(ctx, func() error { return dst.Tag(ctx, *prev[i], tag) }); err != nil {
				report = append(report, fmt.Sprintf("%s %s %s: could not put it back on %s: %s", tag, left, p.Manifest.Digest, prev[i].Digest, trimErr(err)))
				continue
			}
			report = append(report, fmt.Sprintf("%s put back on %s", tag, prev[i].Digest))
		default:
			var existed bool
			if err := c.retry(ctx, func() (err error) {
				existed, err = untag(ctx, dst, tag)
				return err
			}); err != nil {
				how := "could not remove it: " + trimErr(err)
				if unsupported(err) {
					how = "the registry does not support deleting tags (" + trimErr(err) + "), so delete it by hand"
				}
				report = append(report, fmt.Sprintf("%s (new) %s %s: %s", tag, left, p.Manifest.Digest, how))
				continue
			}
			if existed {
				report = append(report, tag+" removed (it was new)")
			} else {
				report = append(report, tag+" not created")
			}
		}
	}
	return report
}

func tagManifest(ctx context.Context, dst oras.Target, p *Packed, tag string) error {
	if rp, ok := dst.(registry.ReferencePusher); ok {
		return rp.PushReference(ctx, p.Manifest, bytes.NewReader(p.ManifestJSON), tag)
	}
	return dst.Tag(ctx, p.Manifest, tag)
}

// untag removes a tag, leaving the manifest it names, and reports whether the tag existed.
func untag(ctx context.Context, dst oras.Target, tag string) (existed bool, err error) {
	switch t := dst.(type) {
	case *remote.Repository:
		return deleteRemoteTag(ctx, t, tag)
	case interface {
		Untag(ctx context.Context, reference string) error
	}:
		if err := t.Untag(ctx, tag); err != nil {
			if errors.Is(err, errdef.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	}
	return false, fmt.Errorf("%T cannot remove tags", dst)
}

// deleteRemoteTag sends DELETE /v2/<name>/manifests/<tag> (OCI distribution spec, "Deleting tags";
// oras-go deletes manifests by digest only, which would take every other tag of the manifest along).
func deleteRemoteTag(ctx context.Context, repo *remote.Repository, tag string) (existed bool, err error) {
	ref := repo.Reference
	ref.Reference = tag
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: ref.Host(), Path: "/v2/" + ref.Repository + "/manifests/" + tag}
	req, err := http.NewRequestWithContext(auth.AppendRepositoryScope(ctx, ref, auth.ActionDelete), http.MethodDelete, u.String(), nil)
	if err != nil {
		return false, err
	}
	resp, err := repo.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusNoContent:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	e := &errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode}
	var body struct {
		Errors errcode.Errors `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 8<<10)).Decode(&body) == nil {
		e.Errors = body.Errors
	}
	return false, e
}

// unsupported reports whether err is a registry's answer that it does not support the operation
// (distribution answers 405 UNSUPPORTED when deletion is disabled).
func unsupported(err error) bool {
	var resp *errcode.ErrorResponse
	if !errors.As(err, &resp) {
		return false
	}
	if resp.StatusCode == http.StatusMethodNotAllowed {
		return true
	}
	for _, e := range resp.Errors {
		if e.Code == errcode.ErrorCodeUnsupported {
			return true
		}
	}
	return false
}
