package bundle

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"syscall"
	"testing"
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
