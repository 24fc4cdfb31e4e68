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
	"net/url"
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
	// A certificate does not verify on the next attempt either, nor does a registry switch between
	// HTTPS and plain HTTP.
	return isNetworkError(err) && !isTLSError(err) && !isSchemeMismatch(err)
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
	if kind, _ := Cause(err); kind == CauseSchemeHTTPS {
		return c.untrusted
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
	if isTLSError(err) || isSchemeMismatch(err) {
		return c.untrusted
	}
	if isNetworkError(err) {
		return c.unreachable
	}
	return nil
}

// wrap prefixes err with what failed and, when err is of one of the classes, the class's reason and
// sentinel: "what: unreachable: registry unreachable: cause (after 5 attempts)". The result matches
// both the class sentinel and err, so that [Cause] still finds the real cause under the short message.
func (c registryClass) wrap(what string, err error) error {
	if class := c.of(err); class != nil {
		return &classError{what: what, reason: c.reason(class), class: class, err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// WrapRegistryError prefixes err, an error of a registry operation of the caller's own (such as a
// login), with what failed and classifies it like [Push], [Inspect] and [Pull] do: the result
// matches [ErrNotFound], [ErrUnauthorized], [ErrUnreachable] or [ErrUntrusted] when err is of that
// class, and [Cause] finds its cause.
func WrapRegistryError(what string, err error) error { return bundleClass.wrap(what, err) }

// classError is a registry error of one of the classes. Its message shows oras-go's long request
// error only by its cause (trimErr); Unwrap gives the class sentinel and the whole error.
type classError struct {
	what, reason string
	class, err   error
}

func (e *classError) Error() string {
	class := e.class.Error()
	// The untrusted sentinels speak of certificates; a scheme mismatch has none to speak of.
	switch kind, _ := Cause(e.err); kind {
	case CauseSchemeHTTP:
		class = "the registry answers plain HTTP, not HTTPS"
	case CauseSchemeHTTPS:
		class = "the registry speaks HTTPS, not plain HTTP"
	}
	return fmt.Sprintf("%s: %s: %s: %s", e.what, e.reason, class, trimErr(e.err))
}

func (e *classError) Unwrap() []error { return []error{e.class, e.err} }

// CauseKind is why a registry could not be used, finer than the sentinel errors: the CLI and the
// provider turn it into advice in their own words (flags or attributes).
type CauseKind int

// The causes [Cause] tells apart.
const (
	CauseUnknown     CauseKind = iota // none of the below
	CauseDNS                          // the host name does not resolve (no such host, or the resolver failed)
	CauseRefused                      // nothing listens at host:port
	CauseTimeout                      // no connection or answer in time, or a transfer stalled
	CauseDropped                      // the connection was reset or closed mid-exchange
	CauseServer                       // the registry kept answering 5xx, 429 or 408
	CauseSchemeHTTP                   // HTTPS was used, the registry answers plain HTTP
	CauseSchemeHTTPS                  // plain HTTP was used, the registry speaks HTTPS
	CauseCertificate                  // the registry's certificate does not verify
	CauseTLS                          // another TLS failure (the server does not speak TLS or HTTP)
)

var causeNames = [...]string{"unknown", "DNS", "refused", "timeout", "dropped", "server error", "plain HTTP registry", "HTTPS registry", "certificate", "TLS"}

func (k CauseKind) String() string {
	if k < 0 || int(k) >= len(causeNames) {
		return fmt.Sprintf("CauseKind(%d)", int(k))
	}
	return causeNames[k]
}

// Cause returns why err, a registry error of [Push], [Inspect], [Pull], [ResolveImages] or
// [Client.Login], happened, and the host it concerns as requested: host[:port], with the port for
// CauseRefused ("" when err names none). The checks go from the most specific cause to the least.
func Cause(err error) (CauseKind, string) {
	if err == nil {
		return CauseUnknown, ""
	}
	host := errHost(err)
	var dnsErr *net.DNSError
	var stall *StallError
	var resp *errcode.ErrorResponse
	hasResp := errors.As(err, &resp)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch):
		return CauseSchemeHTTP, host
	case hasResp && isHTTPSAnswer(resp):
		return CauseSchemeHTTPS, host
	case isCertError(err):
		return CauseCertificate, host
	case isTLSError(err):
		return CauseTLS, host
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout: // no such host, or the resolver failed
		if dnsErr.Name != "" {
			host = dnsErr.Name
		}
		return CauseDNS, host
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused, withPort(err, host)
	case errors.As(err, &stall), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return CauseTimeout, host
	case hasResp && isTransientStatus(resp.StatusCode):
		return CauseServer, host
	case isNetworkError(err):
		return CauseDropped, host
	}
	return CauseUnknown, host
}

// isSchemeMismatch reports HTTPS against plain HTTP or the reverse: never fixed by another attempt.
func isSchemeMismatch(err error) bool {
	kind, _ := Cause(err)
	return kind == CauseSchemeHTTP || kind == CauseSchemeHTTPS
}

// isHTTPSAnswer reports a TLS server's answer to a plain-HTTP request: Go's TLS server (and nginx)
// answer 400 with a text body ("Client sent an HTTP request to an HTTPS server."), which oras-go
// drops; a registry answers its own 400s with a JSON error body, so a 400 to plain HTTP without one
// is the TLS server.
func isHTTPSAnswer(resp *errcode.ErrorResponse) bool {
	return resp.StatusCode == http.StatusBadRequest && resp.URL != nil && resp.URL.Scheme == "http" && len(resp.Errors) == 0
}

func isCertError(err error) bool {
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	return errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &certInvalid)
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// errHost returns the host[:port] of the request err is about, or "".
func errHost(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			return u.Host
		}
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && resp.URL != nil {
		return resp.URL.Host
	}
	return ""
}

// withPort adds the port a refused connection was made to, when host does not name it.
func withPort(err error, host string) string {
	if _, _, splitErr := net.SplitHostPort(host); splitErr == nil {
		return host
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Addr != nil {
		if _, port, splitErr := net.SplitHostPort(opErr.Addr.String()); splitErr == nil {
			if host == "" {
				return opErr.Addr.String()
			}
			return net.JoinHostPort(host, port)
		}
	}
	return host
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
