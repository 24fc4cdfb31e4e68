// Package option holds the flag groups shared by ferry's commands, and its user-facing errors and
// exit codes.
package option

import (
	"errors"
	"strings"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Exit codes, documented in docs/cli.md. Application commands add codes for their failure classes.
const (
	ExitOK        = 0
	ExitError     = 1 // unexpected failure
	ExitPermanent = 2 // invalid input, or a failure that retrying cannot fix
	ExitTransient = 3 // a registry or cluster stayed unreachable through every retry
)

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
	switch {
	case errors.Is(err, bundle.ErrUnauthorized), errors.Is(err, bundle.ErrImageUnauthorized):
		return "Log in with `ferry login HOST` (or docker/oras login), or check the credential helper in ~/.docker/config.json."
	case errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrImageUntrusted):
		return "Trust the registry's CA with --ca-file FILE (or the system trust store), skip verification with --insecure (lab registries only), or use --plain-http for a registry without TLS."
	case errors.Is(err, bundle.ErrUnreachable), errors.Is(err, bundle.ErrImageUnreachable):
		return "Check the address and network; use --plain-http for a registry without TLS, --ca-file or --insecure for a private CA."
	case errors.Is(err, bundle.ErrInvalidSpec):
		return "Fix ferry.yaml; the format is in docs/bundle-format.md."
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
		errors.Is(err, bundle.ErrUnauthorized), errors.Is(err, bundle.ErrDigestMismatch),
		errors.Is(err, bundle.ErrUnsafeArchive), errors.Is(err, bundle.ErrArchiveLimit),
		errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrImageUntrusted):
		return ExitPermanent
	}
	return ExitError
}

// Usagef returns an Error for bad command-line input.
func Usagef(usage, recommendation string, err error) error {
	return &Error{Err: err, Usage: usage, Recommendation: recommendation, Code: ExitPermanent}
}
