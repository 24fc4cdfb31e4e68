package option

import (
	"syscall"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// ferry's exit codes. ExitCodes describes each; docs/cli.md's table must say the same (a test
// compares them), and every code a command returns is one of these.
const (
	ExitOK        = 0
	ExitError     = 1 // unexpected failure
	ExitPermanent = 2 // invalid input, or a failure that retrying cannot fix
	ExitTransient = 3 // a registry or cluster stayed unreachable through every retry
	ExitWindow    = 4 // the deployment window is closed
	ExitStuck     = 5 // stuck or timed out
	ExitConflict  = 6 // another operation is requested or running
	ExitApproval  = 7 // Argo CD waits for a pruning or deletion confirmation

	// The failures of signature verification (`ferry bundle verify`, and `push` or `app sync`
	// with a trusted key), each its own code so that a pipeline can tell them apart.
	ExitUnsigned        = 10 // the bundle has no signature
	ExitBadSignature    = 11 // a signature does not verify (tampered)
	ExitUntrustedKey    = 12 // signed, but by no trusted key
	ExitSignatureDigest = 13 // a signature for another digest
	ExitNoAttestation   = 14 // signed, but a required attestation is missing

	// ExitUsage is the exit code of a command-line mistake: an unknown command or flag, a wrong
	// number of arguments, a missing required flag. It is the code of invalid input.
	ExitUsage = ExitPermanent
	// ExitInterrupted is the exit code after SIGINT (Ctrl-C): 128 + the signal number, as shells
	// report it, so SIGTERM exits 143.
	ExitInterrupted = 128 + int(syscall.SIGINT)
	// ExitTerminated is the exit code after SIGTERM.
	ExitTerminated = 128 + int(syscall.SIGTERM)
)

// ExitStatus is one row of the exit-code table.
type ExitStatus struct {
	Code    int
	Meaning string
	// Classes are the failure classes of `ferry app sync|wait` (the "class" of --format json)
	// that exit with Code.
	Classes []argocd.Class
}

// ExitCodes is the exit-code table of docs/cli.md, in its order.
var ExitCodes = []ExitStatus{
	{ExitOK, "success", []argocd.Class{argocd.ClassSuccess}},
	{ExitError, "unexpected failure", nil},
	{ExitPermanent, "invalid input, or a failure that retrying cannot fix", []argocd.Class{argocd.ClassPermanent}},
	{ExitTransient, "transient failure that outlasted the retries", []argocd.Class{argocd.ClassTransient}},
	{ExitWindow, "deployment window closed", []argocd.Class{argocd.ClassWindow}},
	{ExitStuck, "stuck or timed out", []argocd.Class{argocd.ClassStuck, argocd.ClassTimeout}},
	{ExitConflict, "conflict", []argocd.Class{argocd.ClassConflict}},
	{ExitApproval, "needs approval", []argocd.Class{argocd.ClassApproval}},
	{ExitUnsigned, "bundle not signed", nil},
	{ExitBadSignature, "signature does not verify", nil},
	{ExitUntrustedKey, "signed by no trusted key", nil},
	{ExitSignatureDigest, "signature for another digest", nil},
	{ExitNoAttestation, "required attestation missing", nil},
	{ExitInterrupted, "interrupted by SIGINT (Ctrl-C)", nil},
	{ExitTerminated, "interrupted by SIGTERM", nil},
}

// ClassCode returns the exit code of a failure class of the sync engine; a class the table does
// not know (a newer engine) is a permanent failure rather than success.
func ClassCode(c argocd.Class) int {
	for _, s := range ExitCodes {
		for _, sc := range s.Classes {
			if sc == c {
				return s.Code
			}
		}
	}
	return ExitPermanent
}
