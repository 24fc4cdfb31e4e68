// Package option holds the flag groups shared by ferry's commands, and its user-facing errors and
// exit codes.
package option

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Exit codes, documented in docs/cli.md. Application commands add codes for their failure classes.
const (
	ExitOK        = 0
	ExitError     = 1 // unexpected failure
	ExitPermanent = 2 // invalid input, or a failure that retrying cannot fix
	ExitTransient = 3 // a registry or cluster stayed unreachable through every retry

	// ExitUsage is the exit code of a command-line mistake: an unknown command or flag, a wrong
	// number of arguments, a missing required flag. It is the code of invalid input.
	ExitUsage = ExitPermanent
	// ExitInterrupted is the exit code after SIGINT (Ctrl-C): 128 + the signal number, as shells
	// report it, so SIGTERM exits 143.
	ExitInterrupted = 128 + int(syscall.SIGINT)
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
		b.WriteString("\n" + rec)
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
	case errors.Is(err, bundle.ErrImageUntrusted):
		return "Trust the image registry's CA with --ca-file FILE (or the system trust store), skip verification for it with --insecure-registry HOST (lab registries only), or use --plain-http-registry HOST for a registry without TLS."
	case errors.Is(err, bundle.ErrUntrusted):
		return "Trust the registry's CA with --ca-file FILE (or the system trust store), skip verification with --insecure (lab registries only), or use --plain-http for a registry without TLS."
	case errors.Is(err, bundle.ErrImageUnreachable):
		return "Check the image registry's address, DNS and network, or push with --offline if every image is pinned by digest; use --plain-http-registry HOST for a registry without TLS, --ca-file or --insecure-registry HOST for a private CA."
	case errors.Is(err, bundle.ErrUnreachable):
		return "Check the address and network; use --plain-http for a registry without TLS, --ca-file or --insecure for a private CA."
	case errors.Is(err, bundle.ErrInvalidSpec):
		return "Fix ferry.yaml; the format is in docs/bundle-format.md."
	case errors.Is(err, bundle.ErrArchiveLimit):
		return "If you trust the bundle, raise the limit the error names with --max-entries, --max-file-size, --max-total-size or --max-ratio (docs/bundle-format.md)."
	case errors.Is(err, bundle.ErrNotBundle):
		return "Push the release with `ferry bundle push`; oras and helm artifacts are not bundles."
	}
	return ""
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
	case errors.Is(err, bundle.ErrUnreachable), errors.Is(err, bundle.ErrImageUnreachable):
		return ExitTransient
	case errors.Is(err, bundle.ErrInvalidSpec), errors.Is(err, bundle.ErrInvalidReference),
		errors.Is(err, bundle.ErrImageNotFound), errors.Is(err, bundle.ErrImageUnauthorized),
		errors.Is(err, bundle.ErrOfflineTag), errors.Is(err, bundle.ErrRender), errors.Is(err, bundle.ErrLayout),
		errors.Is(err, bundle.ErrManifest), errors.Is(err, bundle.ErrNotBundle), errors.Is(err, bundle.ErrNotFound),
		errors.Is(err, bundle.ErrUnauthorized), errors.Is(err, bundle.ErrDigestMismatch), errors.Is(err, bundle.ErrOutputExists),
		errors.Is(err, bundle.ErrUnsafeArchive), errors.Is(err, bundle.ErrArchiveLimit), errors.Is(err, bundle.ErrInvalidArchive),
		errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrImageUntrusted):
		return ExitPermanent
	}
	return ExitError
}

// Usagef returns an Error for bad command-line input.
func Usagef(usage, recommendation string, err error) error {
	return &Error{Err: err, Usage: usage, Recommendation: recommendation, Code: ExitUsage}
}
