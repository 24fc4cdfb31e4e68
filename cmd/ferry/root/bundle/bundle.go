// Package bundle holds the `ferry bundle` commands.
package bundle

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

// New returns the `ferry bundle` command.
func New() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Push, pull, inspect, sign, verify and copy release bundles (one OCI artifact per release candidate)",
	}
	cmd.AddCommand(pushCmd(), pullCmd(), inspectCmd(), signCmd(), verifyCmd(), copyCmd())
	return cmd
}

func parseRef(arg, usage string) (bundle.Reference, error) {
	ref, err := bundle.ParseReference(ociForm(arg))
	if err != nil {
		// The error says what is wrong with this reference (a scheme, a host alone, uppercase); the
		// hint gives the forms.
		hint := fmt.Sprintf("write it as host/repo:tag, host/repo@sha256:… or %sPATH[:tag]", bundle.LayoutPrefix)
		return ref, option.Usagef(usage, hint, err)
	}
	if arg != ociForm(arg) {
		fmt.Fprintf(os.Stderr, "note: reading %s as %s\n", arg, ociForm(arg))
	}
	return ref, nil
}

// ociForm turns the forms Argo CD, Flux and OpenTofu users write — oci://host/repo[:tag] and
// OpenTofu's oci://host/repo?digest=sha256:… — into a reference (host/repo[:tag],
// host/repo@sha256:…); anything else is returned as it is.
func ociForm(arg string) string {
	rest, ok := strings.CutPrefix(arg, "oci://")
	if !ok {
		return arg
	}
	if repo, digest, ok := strings.Cut(rest, "?digest="); ok {
		return repo + "@" + digest
	}
	return rest
}
