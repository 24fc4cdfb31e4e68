// Package option holds the flag groups shared by ferry's commands, and its user-facing errors and
// exit codes.
package option

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Interrupted is why a command stopped when ferry received SIGINT (Ctrl-C) or SIGTERM: main cancels
// the command's context with it as the cause, and it replaces whatever error the cancellation caused.
type Interrupted struct {
	Signal syscall.Signal
	// Outcome, if set, says what the command did on its way out (a push: what became of each tag).
	Outcome string
}

func (e *Interrupted) Error() string {
	var s string
	switch e.Signal {
	case syscall.SIGINT:
		s = "interrupted by SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		s = "interrupted by SIGTERM"
	default:
		s = "interrupted by " + e.Signal.String()
	}
	if e.Outcome != "" {
		s += "; " + e.Outcome
	}
	return s
}

// interruption returns the Interrupted that err carries; a context.Canceled anywhere in err counts as
// SIGINT (the only thing that cancels a command's context), however it is wrapped.
func interruption(err error) (*Interrupted, bool) {
	var in *Interrupted
	if errors.As(err, &in) {
		return in, true
	}
	if errors.Is(err, context.Canceled) {
		return &Interrupted{Signal: syscall.SIGINT}, true
	}
	return nil, false
}

// Error is a user-facing error: what failed, and what to do about it.
type Error struct {
	Err            error
	Usage          string
	Recommendation string
	Code           int
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// FormatError renders err for the terminal: "Error: …", then the usage and the recommendation.
func FormatError(err error) string {
	if in, ok := interruption(err); ok {
		// Short: what the cancellation did to a request ("unreachable …") is not what happened.
		return "Error: " + in.Error()
	}
	var b strings.Builder
	b.WriteString("Error: ")
	b.WriteString(err.Error())
	var e *Error
	rec := ""
	if errors.As(err, &e) {
		if e.Usage != "" {
			b.WriteString("\nUsage: " + e.Usage)
		}
		rec = e.Recommendation
	}
	if rec == "" {
		rec = recommendation(err)
	}
	if rec != "" {
		// A sentence, however the caller wrote it.
		b.WriteString("\n" + strings.ToUpper(rec[:1]) + rec[1:])
	}
	return b.String()
}

func recommendation(err error) string {
	var credErr *bundle.CredentialError
	switch {
	case errors.As(err, &credErr):
		return "" // the error names the credential source and what to do
	case errors.Is(err, bundle.ErrUnauthorized), errors.Is(err, bundle.ErrImageUnauthorized):
		return "Log in with `ferry login HOST` (or docker/oras login), or check the credential helper in ~/.docker/config.json."
	case errors.Is(err, bundle.ErrImageUntrusted), errors.Is(err, bundle.ErrImageUnreachable):
		return registryHint(err, true)
	case errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrUnreachable):
		return registryHint(err, false)
	case errors.Is(err, bundle.ErrInvalidSpec):
		return "Fix ferry.yaml; the format is in docs/bundle-format.md."
	case errors.Is(err, bundle.ErrArchiveLimit):
		return "If you trust the bundle, raise the limit the error names with --max-entries, --max-file-size, --max-total-size or --max-ratio (docs/bundle-format.md)."
	case errors.Is(err, bundle.ErrNotBundle):
		return "Push the release with `ferry bundle push`; oras and helm artifacts are not bundles."
	}
	return ""
}

// registryHint says what to do about a registry that could not be used, from the real cause
// (bundle.Cause): a TLS or plain-HTTP flag is suggested only when TLS is what failed. image is true
// for an image registry of ferry.yaml, which is named by --plain-http-registry and
// --insecure-registry rather than --plain-http and --insecure.
func registryHint(err error, image bool) string {
	hint := registryAdvice(err, image)
	return strings.ToUpper(hint[:1]) + hint[1:]
}

func registryAdvice(err error, image bool) string {
	kind, host := bundle.Cause(err)
	flagHost := host
	if host == "" {
		host, flagHost = "the registry", "HOST"
		if image {
			host = "the image registry"
		}
	}
	plainHTTP, insecure := "--plain-http", "--insecure"
	if image {
		plainHTTP, insecure = "--plain-http-registry "+flagHost, "--insecure-registry "+flagHost
	}
	switch kind {
	case bundle.CauseDNS:
		if image {
			return fmt.Sprintf("Cannot resolve %s: check the name in ferry.yaml, or push with --offline to lock digests as written (every image must be pinned by digest).", host)
		}
		return fmt.Sprintf("Cannot resolve %s: check the name.", host)
	case bundle.CauseRefused:
		return fmt.Sprintf("Nothing listens at %s: check the address and port.", host)
	case bundle.CauseTimeout:
		return fmt.Sprintf("%s did not answer in time: check the network and firewall, or allow a slow registry more with --request-timeout or --idle-timeout.", host)
	case bundle.CauseDropped:
		return fmt.Sprintf("%s dropped the connection at every attempt: check the network and any proxy or load balancer in front of it, then retry.", host)
	case bundle.CauseServer:
		return fmt.Sprintf("%s kept failing (5xx, 429 or 408) at every attempt: retry later, or raise --retries.", host)
	case bundle.CauseSchemeHTTP:
		if image {
			return fmt.Sprintf("%s answers plain HTTP: add --plain-http-registry %s.", host, flagHost)
		}
		return fmt.Sprintf("%s answers plain HTTP: add --plain-http (for an image registry of ferry.yaml: --plain-http-registry HOST).", host)
	case bundle.CauseSchemeHTTPS:
		if image {
			return fmt.Sprintf("%s speaks HTTPS: drop --plain-http-registry %s (add --ca-file or --insecure-registry %s if its certificate is private).", host, flagHost, flagHost)
		}
		return fmt.Sprintf("%s speaks HTTPS: drop --plain-http (add --ca-file or --insecure if its certificate is private).", host)
	case bundle.CauseCertificate:
		return fmt.Sprintf("The certificate of %s does not verify: trust its CA with --ca-file FILE (or the system trust store), or skip verification with %s (lab registries only).", host, insecure)
	case bundle.CauseTLS:
		return fmt.Sprintf("The TLS handshake with %s failed: check the port; use %s for a registry without TLS, --ca-file or %s for a private CA.", host, plainHTTP, insecure)
	}
	if image {
		return "Check the image registry's address and network, or push with --offline if every image is pinned by digest."
	}
	return "Check the registry's address and network."
}

// ExitCode returns the process exit code for err.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if in, ok := interruption(err); ok {
		return 128 + int(in.Signal)
	}
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code
	}
	switch {
	case errors.Is(err, bundle.ErrUnsigned):
		return ExitUnsigned
	case errors.Is(err, bundle.ErrBadSignature):
		return ExitBadSignature
	case errors.Is(err, bundle.ErrUntrustedKey):
		return ExitUntrustedKey
	case errors.Is(err, bundle.ErrSignatureDigest):
		return ExitSignatureDigest
	case errors.Is(err, bundle.ErrMissingAttestation):
		return ExitNoAttestation
	case errors.Is(err, bundle.ErrUnreachable), errors.Is(err, bundle.ErrImageUnreachable):
		return ExitTransient
	case errors.Is(err, bundle.ErrInvalidSpec), errors.Is(err, bundle.ErrInvalidReference),
		errors.Is(err, bundle.ErrImageNotFound), errors.Is(err, bundle.ErrImageUnauthorized),
		errors.Is(err, bundle.ErrOfflineTag), errors.Is(err, bundle.ErrRender), errors.Is(err, bundle.ErrLayout),
		errors.Is(err, bundle.ErrManifest), errors.Is(err, bundle.ErrNotBundle), errors.Is(err, bundle.ErrNotFound),
		errors.Is(err, bundle.ErrUnauthorized), errors.Is(err, bundle.ErrDigestMismatch), errors.Is(err, bundle.ErrOutputExists),
		errors.Is(err, bundle.ErrUnsafeArchive), errors.Is(err, bundle.ErrArchiveLimit), errors.Is(err, bundle.ErrInvalidArchive),
		errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrImageUntrusted), errors.Is(err, bundle.ErrSigningKey):
		return ExitPermanent
	}
	return ExitError
}

// Usagef returns an Error for bad command-line input.
func Usagef(usage, recommendation string, err error) error {
	return &Error{Err: err, Usage: usage, Recommendation: recommendation, Code: ExitUsage}
}
