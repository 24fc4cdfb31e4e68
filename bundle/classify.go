package bundle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
)

// isTransient reports whether err is worth another attempt: a 5xx, 429 or 408 answer, or a connection
// that was refused, reset, dropped or timed out. A cancelled ctx is never transient.
func isTransient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		return isTransientStatus(resp.StatusCode)
	}
	return isNetworkError(err) && !isTLSError(err) // a certificate does not verify on the next attempt either
}

func isTransientStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

func isNetworkError(err error) bool {
	if isContentError(err) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// isContentError reports an error in what a blob holds (a truncated or corrupt archive, an unsafe
// entry, a limit, a digest mismatch): fetching the same blob again cannot fix it, even when its cause
// reads like a network error (a truncated archive ends in io.ErrUnexpectedEOF). A connection that
// drops mid-body is passed through by the extractors unwrapped, so it stays a network error.
func isContentError(err error) bool {
	return errors.Is(err, archive.ErrInvalidArchive) || errors.Is(err, archive.ErrUnsafeEntry) ||
		errors.Is(err, archive.ErrLimitExceeded) || errors.Is(err, ErrDigestMismatch)
}

func isTLSError(err error) bool {
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	return errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &certInvalid) || errors.As(err, &recordErr)
}

// registryClass maps a registry error to one of four classes, or nil when it is none of them.
type registryClass struct{ notFound, unauthorized, unreachable, untrusted error }

var (
	imageClass  = registryClass{ErrImageNotFound, ErrImageUnauthorized, ErrImageUnreachable, ErrImageUntrusted}
	bundleClass = registryClass{ErrNotFound, ErrUnauthorized, ErrUnreachable, ErrUntrusted}
)

func (c registryClass) of(err error) error {
	if errors.Is(err, errdef.ErrNotFound) {
		return c.notFound
	}
	var le *lookupError
	if errors.Is(err, auth.ErrBasicCredentialNotFound) || errors.As(err, &le) {
		return c.unauthorized
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return c.unauthorized
		case http.StatusNotFound:
			return c.notFound
		}
		if isTransientStatus(resp.StatusCode) {
			return c.unreachable
		}
		return nil
	}
	if isTLSError(err) {
		return c.untrusted
	}
	if isNetworkError(err) {
		return c.unreachable
	}
	return nil
}

// wrap prefixes err with what failed and, when err is of one of the classes, the class's reason and
// sentinel: "what: unreachable: registry unreachable: cause (after 5 attempts)".
func (c registryClass) wrap(what string, err error) error {
	if class := c.of(err); class != nil {
		return fmt.Errorf("%s: %s: %w: %v", what, c.reason(class), class, trimErr(err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// reason is a short human cause for an error of class c.
func (c registryClass) reason(class error) string {
	switch class {
	case c.notFound:
		return "not found"
	case c.unauthorized:
		return "unauthorized"
	case c.unreachable:
		return "unreachable"
	case c.untrusted:
		return "TLS"
	}
	return "failed"
}

func isAlreadyExists(err error) bool { return errors.Is(err, errdef.ErrAlreadyExists) }
