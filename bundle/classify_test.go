package bundle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/errcode"
)

// TestClassifyTLS: a certificate that does not verify is its own class, never retried; a dropped
// connection stays unreachable and is retried.
func TestClassifyTLS(t *testing.T) {
	wrap := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://r.example/v2/", Err: err}
	}
	tests := []struct {
		name      string
		err       error
		class     error
		transient bool
	}{
		{"unknown authority", wrap(x509.UnknownAuthorityError{}), ErrUntrusted, false},
		{"wrong host", wrap(x509.HostnameError{Host: "r.example", Certificate: &x509.Certificate{}}), ErrUntrusted, false},
		{"expired", wrap(x509.CertificateInvalidError{Reason: x509.Expired, Cert: &x509.Certificate{}}), ErrUntrusted, false},
		{"refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), ErrUnreachable, true},
		{"reset", wrap(syscall.ECONNRESET), ErrUnreachable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bundleClass.of(tt.err); !errors.Is(got, tt.class) {
				t.Errorf("class = %v, want %v", got, tt.class)
			}
			if got := isTransient(context.Background(), tt.err); got != tt.transient {
				t.Errorf("isTransient = %v, want %v", got, tt.transient)
			}
		})
	}
	if got := imageClass.of(wrap(x509.UnknownAuthorityError{})); !errors.Is(got, ErrImageUntrusted) {
		t.Errorf("image class = %v, want ErrImageUntrusted", got)
	}
}

// TestCause: the cause under a classified registry error is still found, with its host, and decides
// both the class and the retry: a scheme mismatch is never retried, DNS and refused connections are.
func TestCause(t *testing.T) {
	get := func(rawURL string, err error) error {
		return &url.Error{Op: "Get", URL: rawURL, Err: err}
	}
	httpURL, _ := url.Parse("http://r.example:5000/v2/shop/b/manifests/1")
	tests := []struct {
		name      string
		err       error
		kind      CauseKind
		host      string
		class     error
		transient bool
	}{
		{"plain HTTP registry", get("https://r.example:5000/v2/", http.ErrSchemeMismatch), CauseSchemeHTTP, "r.example:5000", ErrUntrusted, false},
		{"HTTPS registry", &errcode.ErrorResponse{Method: "GET", URL: httpURL, StatusCode: http.StatusBadRequest}, CauseSchemeHTTPS, "r.example:5000", ErrUntrusted, false},
		{"registry 400", &errcode.ErrorResponse{Method: "GET", URL: httpURL, StatusCode: http.StatusBadRequest, Errors: errcode.Errors{{Code: "MANIFEST_INVALID"}}}, CauseUnknown, "r.example:5000", nil, false},
		{"certificate", get("https://r.example/v2/", x509.UnknownAuthorityError{}), CauseCertificate, "r.example", ErrUntrusted, false},
		{"not TLS", get("https://r.example/v2/", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), CauseTLS, "r.example", ErrUntrusted, false},
		{"DNS", get("https://nosuch.example/v2/", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nosuch.example", IsNotFound: true}}), CauseDNS, "nosuch.example", ErrUnreachable, true},
		{"refused", get("https://r.example/v2/", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443}, Err: syscall.ECONNREFUSED}), CauseRefused, "r.example:443", ErrUnreachable, true},
		{"refused with port", get("http://127.0.0.1:1/v2/", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), CauseRefused, "127.0.0.1:1", ErrUnreachable, true},
		{"stall", get("https://r.example/v2/", &StallError{Idle: time.Second}), CauseTimeout, "r.example", ErrUnreachable, true},
		{"reset", get("https://r.example/v2/", syscall.ECONNRESET), CauseDropped, "r.example", ErrUnreachable, true},
		{"503", &errcode.ErrorResponse{Method: "GET", URL: httpURL, StatusCode: http.StatusServiceUnavailable}, CauseServer, "r.example:5000", ErrUnreachable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bundleClass.wrap("r.example/shop/b:1: fetch manifest", &attemptsError{err: fmt.Errorf("GET %q: %w", "https://r.example/v2/", tt.err), attempts: 2})
			if kind, host := Cause(err); kind != tt.kind || host != tt.host {
				t.Errorf("Cause = %v %q, want %v %q", kind, host, tt.kind, tt.host)
			}
			if tt.class != nil && !errors.Is(err, tt.class) {
				t.Errorf("%v does not match %v", err, tt.class)
			}
			if got := isTransient(context.Background(), tt.err); got != tt.transient {
				t.Errorf("isTransient = %v, want %v", got, tt.transient)
			}
			if tt.class != nil && !strings.HasSuffix(err.Error(), "(after 2 attempts)") {
				t.Errorf("message %q lost the attempts", err)
			}
		})
	}
	// The untrusted sentinel speaks of certificates: a scheme mismatch says what it is instead.
	err := bundleClass.wrap("what", get("https://r.example:5000/v2/", http.ErrSchemeMismatch))
	if want := "what: TLS: the registry answers plain HTTP, not HTTPS: http: server gave HTTP response to HTTPS client"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	if kind, _ := Cause(errors.New("other")); kind != CauseUnknown {
		t.Errorf("Cause(other) = %v, want unknown", kind)
	}
}
