package bundle

import (
	"fmt"
	"net"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
)

// LayoutPrefix marks a reference to an OCI image layout directory instead of a registry.
const LayoutPrefix = "oci-layout:"

// Reference names a bundle: host/repo[:tag][@digest] in a registry, or oci-layout:PATH[:tag][@digest]
// in an OCI image layout on disk.
type Reference struct {
	// Layout is the layout directory; empty for a registry reference.
	Layout string
	// Registry is the registry host[:port]; empty for a layout.
	Registry string
	// Repository is the repository path inside the registry; empty for a layout.
	Repository string
	// Tag is the tag, if any.
	Tag string
	// Digest is the manifest digest, if any.
	Digest string
}

// ParseReference parses a bundle reference.
func ParseReference(s string) (Reference, error) {
	if strings.TrimSpace(s) != s || s == "" {
		return Reference{}, fmt.Errorf("%q: %w: use host/repo:tag, host/repo@sha256:… or %sPATH[:tag]", s, ErrInvalidReference, LayoutPrefix)
	}
	if rest, ok := strings.CutPrefix(s, LayoutPrefix); ok {
		var r Reference
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			r.Digest = rest[i+1:]
			rest = rest[:i]
			if _, err := digest.Parse(r.Digest); err != nil {
				return Reference{}, fmt.Errorf("%q: %w: bad digest %q: %v", s, ErrInvalidReference, r.Digest, err)
			}
		}
		if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			r.Tag = rest[i+1:]
			rest = rest[:i]
			if err := (registry.Reference{Registry: "x", Repository: "x", Reference: r.Tag}).ValidateReferenceAsTag(); err != nil {
				return Reference{}, fmt.Errorf("%q: %w: bad tag %q", s, ErrInvalidReference, r.Tag)
			}
		}
		if rest == "" {
			return Reference{}, fmt.Errorf("%q: %w: the layout path is empty; use %sPATH[:tag]", s, ErrInvalidReference, LayoutPrefix)
		}
		r.Layout = rest
		return r, nil
	}
	// Said before the parse below, which would report a mangled repository ("/host/repo").
	if scheme, rest, ok := strings.Cut(s, "://"); ok && !strings.Contains(scheme, "/") {
		return Reference{}, fmt.Errorf("%q: %w: a reference has no %s:// scheme: write it as %s", s, ErrInvalidReference, scheme, rest)
	}
	var r Reference
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
	}
	if !strings.Contains(rest, "/") && isHostAlone(rest) {
		return Reference{}, fmt.Errorf("%q: %w: %s is a registry host without a repository; write %s/REPO:TAG", s, ErrInvalidReference, rest, rest)
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		r.Tag = rest[i+1:]
		rest = rest[:i]
	}
	host, repo, ok := strings.Cut(rest, "/")
	if !ok || !looksLikeHost(host) {
		return Reference{}, fmt.Errorf("%q: %w: a bundle reference needs a registry host, e.g. registry.example.com/team/%s", s, ErrInvalidReference, rest)
	}
	r.Registry, r.Repository = host, repo
	if err := r.validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), errdef.ErrInvalidReference.Error()+": ") // said once, by ours
		if lower := strings.ToLower(repo); lower != repo {
			fixed := r
			fixed.Repository = lower
			if fixed.validate() == nil {
				msg += "; repository names are lowercase: " + fixed.String()
			}
		}
		return Reference{}, fmt.Errorf("%q: %w: %s", s, ErrInvalidReference, msg)
	}
	return r, nil
}

// isHostAlone reports whether s, which has no "/", is a registry host rather than a repository
// name: a name with a dot (registry.example.com, 127.0.0.1), localhost, or either with a numeric
// port. "shop:1.0" is a repository and a tag.
func isHostAlone(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	if (registry.Reference{Registry: s}).ValidateRegistry() != nil {
		return false
	}
	return strings.Contains(host, ".") || host == "localhost"
}

// ValidateRegistryHost reports whether host is a registry host as written in references: host[:port],
// with no scheme or path. A failure wraps [ErrInvalidReference].
func ValidateRegistryHost(host string) error {
	if r, err := ParseReference(host + "/x"); err != nil || r.Registry != host {
		return fmt.Errorf("%q: %w: not a registry host; write host[:port] as in references, e.g. registry.example.com or 127.0.0.1:5000", host, ErrInvalidReference)
	}
	return nil
}

func (r Reference) validate() error {
	ref := registry.Reference{Registry: r.Registry, Repository: r.Repository}
	if err := ref.ValidateRegistry(); err != nil {
		return err
	}
	if err := ref.ValidateRepository(); err != nil {
		return err
	}
	if r.Tag != "" {
		ref.Reference = r.Tag
		if err := ref.ValidateReferenceAsTag(); err != nil {
			return err
		}
	}
	if r.Digest != "" {
		if _, err := digest.Parse(r.Digest); err != nil {
			return fmt.Errorf("bad digest %q: %v", r.Digest, err)
		}
	}
	return nil
}

// IsLayout reports whether r names an OCI image layout.
func (r Reference) IsLayout() bool { return r.Layout != "" }

// Name returns the repository part: host/repo, or oci-layout:PATH.
func (r Reference) Name() string {
	if r.IsLayout() {
		return LayoutPrefix + r.Layout
	}
	return r.Registry + "/" + r.Repository
}

// Ref returns the tag or digest used to resolve r: the digest when both are set.
func (r Reference) Ref() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// String returns r in the form it was parsed from.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Pinned returns name@digest for the given digest.
func (r Reference) Pinned(d string) string { return r.Name() + "@" + d }

// OCIURL returns oci://host/repo, the repoURL form Argo CD and Flux use. Empty for a layout.
func (r Reference) OCIURL() string {
	if r.IsLayout() {
		return ""
	}
	return "oci://" + r.Registry + "/" + r.Repository
}

func looksLikeHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

// ImageReference is a parsed container image reference.
type ImageReference struct {
	// Registry is the registry host as written, or docker.io when none is written.
	Registry string
	// Path is the repository path inside the registry (library/ is added for Docker Hub).
	Path string
	// Tag and Digest as written; at least one is set.
	Tag    string
	Digest string
}

// Repository returns Registry/Path, the normalized repository.
func (r ImageReference) Repository() string { return r.Registry + "/" + r.Path }

// ParseImageReference parses an image reference such as nginx:1.27, ghcr.io/org/app@sha256:… or
// registry:5000/app:1.0@sha256:…, normalizing Docker Hub names like Docker does. A reference without
// a tag or digest is an error: bundles pin versions.
func ParseImageReference(s string) (ImageReference, error) {
	r, err := parseImageRef(s)
	if err != nil {
		return r, err
	}
	if r.Tag == "" && r.Digest == "" {
		return r, fmt.Errorf("%q has no tag or digest; pin a version, e.g. %s:1.0.0", s, s)
	}
	return r, nil
}

func parseImageRef(s string) (ImageReference, error) {
	var r ImageReference
	if s == "" || strings.TrimSpace(s) != s {
		return r, fmt.Errorf("%q is not an image reference", s)
	}
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if _, err := digest.Parse(r.Digest); err != nil {
			return r, fmt.Errorf("%q has an invalid digest %q; digests look like sha256:<64 hex>", s, r.Digest)
		}
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		r.Tag = rest[i+1:]
		rest = rest[:i]
	}
	host, p, ok := strings.Cut(rest, "/")
	if ok && looksLikeHost(host) {
		r.Registry, r.Path = host, p
	} else {
		r.Registry, r.Path = "docker.io", rest
		if !strings.Contains(rest, "/") {
			r.Path = "library/" + rest
		}
	}
	ref := registry.Reference{Registry: r.Registry, Repository: r.Path, Reference: r.Tag}
	if err := ref.ValidateRegistry(); err != nil {
		return r, fmt.Errorf("%q has an invalid registry %q", s, r.Registry)
	}
	if err := ref.ValidateRepository(); err != nil {
		return r, fmt.Errorf("%q has an invalid repository %q; use lowercase letters, digits and separators", s, r.Path)
	}
	if r.Tag != "" {
		if err := ref.ValidateReferenceAsTag(); err != nil {
			return r, fmt.Errorf("%q has an invalid tag %q", s, r.Tag)
		}
	}
	return r, nil
}
