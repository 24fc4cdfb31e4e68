package bundle

import "errors"

// Sentinel errors. Callers match them with errors.Is; the wrapped message names the field, image or
// layer concerned.
var (
	// ErrInvalidSpec is returned by [ParseSpec] and [LoadSpec] (and so by [Pack] and [Push]) when
	// ferry.yaml is malformed. The error is a *[SpecError] that names the file, line and field.
	ErrInvalidSpec = errors.New("invalid bundle spec")

	// ErrInvalidReference is returned by [ParseReference] and the commands that take a reference
	// when it is neither host/repo[:tag|@digest] nor oci-layout:PATH[:tag|@digest].
	ErrInvalidReference = errors.New("invalid reference")

	// ErrImageNotFound is returned by [Push] and [ResolveImages] when an image of the spec does not
	// exist in its registry.
	ErrImageNotFound = errors.New("image not found")

	// ErrImageUnauthorized is returned by [Push] and [ResolveImages] when the registry of an image
	// refuses the credentials (HTTP 401 or 403).
	ErrImageUnauthorized = errors.New("image access unauthorized")

	// ErrImageUnreachable is returned by [Push] and [ResolveImages] when the registry of an image
	// cannot be reached (DNS, connection refused, timeout).
	ErrImageUnreachable = errors.New("image registry unreachable")

	// ErrImageUntrusted is returned by [Push] and [ResolveImages] when the TLS certificate of an
	// image's registry does not verify (unknown authority, wrong host name, expired), or the
	// registry does not speak what the client does (HTTPS or plain HTTP; [Cause] tells which).
	// Never retried.
	ErrImageUntrusted = errors.New("image registry certificate not trusted")

	// ErrOfflineTag is returned by [Push] with PushOptions.Offline when an image is referenced by
	// tag only, since a tag cannot be resolved without its registry.
	ErrOfflineTag = errors.New("image tag cannot be resolved offline")

	// ErrRender is returned by [Pack] and [Push] when a render step fails or prints something that is
	// not Kubernetes YAML.
	ErrRender = errors.New("render step failed")

	// ErrLayout is returned by [Pack] and [Push] when the artifact would break a consumer rule
	// (layer count, content layers, titles), and by [Inspect] and [Pull] for an artifact that breaks
	// them.
	ErrLayout = errors.New("bundle layout rule violated")

	// ErrNotBundle is returned by [Inspect] and [Pull] when the reference exists but is not a ferry
	// bundle (not an image manifest, or the config is not a ferry bundle config).
	ErrNotBundle = errors.New("not a ferry bundle")

	// ErrNotFound is returned by [Inspect] and [Pull] when the reference does not exist.
	ErrNotFound = errors.New("bundle not found")

	// ErrUnauthorized is returned by [Push], [Inspect] and [Pull] when the bundle registry refuses
	// the credentials.
	ErrUnauthorized = errors.New("registry access unauthorized")

	// ErrUnreachable is returned by [Push], [Inspect] and [Pull] when the bundle registry cannot be
	// reached, after retries.
	ErrUnreachable = errors.New("registry unreachable")

	// ErrUntrusted is returned by [Push], [Inspect] and [Pull] when the bundle registry's TLS
	// certificate does not verify, or the registry does not speak what the client does: HTTPS to a
	// plain-HTTP registry or plain HTTP to an HTTPS one ([Cause] tells which). Never retried.
	ErrUntrusted = errors.New("registry certificate not trusted")

	// ErrManifest is returned by [Pack] and [Push] when a file of the manifests directory or a render
	// output is not valid YAML.
	ErrManifest = errors.New("invalid Kubernetes manifest")

	// ErrOutputExists is returned by [Pull] when something it did not create is where it would write:
	// a non-empty role directory, a file or symlink at a role path, or an existing ferry.lock.json;
	// and by [Push] to oci-layout:DIR when DIR is a file, or a non-empty directory that is not an OCI
	// image layout.
	ErrOutputExists = errors.New("output path exists")

	// ErrDigestMismatch is returned by [Pull] when a blob's content does not match its descriptor.
	ErrDigestMismatch = errors.New("content digest mismatch")
)
