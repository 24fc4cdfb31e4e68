// Package display renders ferry's results as text and its progress on a terminal.
package display

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Size formats a byte count for people.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// stepLine returns the line, ending in a newline, that a step is printed as, or "" for an event
// that is not printed as a line (bytes moved).
func stepLine(ev bundle.ProgressEvent) string {
	d := ev.Descriptor
	switch ev.Action {
	case bundle.ProgressUpload:
		return fmt.Sprintf("Uploading   %-18s %10s  %s\n", ev.Title, Size(d.Size), short(d.Digest.String()))
	case bundle.ProgressUploaded:
		return fmt.Sprintf("Uploaded    %-18s %10s\n", ev.Title, Size(d.Size))
	case bundle.ProgressSkip:
		return fmt.Sprintf("Exists      %-18s %10s  %s\n", ev.Title, Size(d.Size), short(d.Digest.String()))
	case bundle.ProgressDownload:
		return fmt.Sprintf("Downloading %-18s %10s  %s\n", ev.Title, Size(d.Size), short(d.Digest.String()))
	case bundle.ProgressDone:
		return fmt.Sprintf("Extracted   %-18s %10s\n", ev.Title, Size(d.Size))
	case bundle.ProgressManifest:
		return fmt.Sprintf("Pushed      manifest           %10s  %s\n", Size(d.Size), short(d.Digest.String()))
	case bundle.ProgressMount:
		return fmt.Sprintf("Mounted     %-18s %10s  %s\n", ev.Title, Size(d.Size), short(d.Digest.String()))
	case bundle.ProgressSignature:
		return fmt.Sprintf("Signed      %-18s %10s  %s\n", ev.Title, Size(d.Size), short(d.Digest.String()))
	case bundle.ProgressTag:
		return fmt.Sprintf("Tagged      %s\n", ev.Title)
	}
	return ""
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// PushText renders a push result.
func PushText(w io.Writer, r *bundle.PushResult) error {
	for _, rw := range r.Rewrites {
		note := ""
		if rw.Note != "" {
			note = " (" + rw.Note + ")"
		}
		fmt.Fprintf(w, "Pinned %s:%d %s -> %s%s\n", rw.File, rw.Line, rw.From, rw.To, note)
	}
	fmt.Fprintf(w, "Pushed %s %s (%d blobs uploaded, %d already present)\n", r.Name, r.Version, r.Uploaded, r.Skipped)
	fmt.Fprintf(w, "Tags:   %s\n", strings.Join(r.Tags, ", "))
	fmt.Fprintf(w, "Digest: %s\n", r.Digest)
	fmt.Fprintf(w, "Pinned: %s\n", r.PinnedReference)
	if r.Signature != "" {
		fmt.Fprintf(w, "Signed: %s (signature referrer)\n", r.Signature)
	}
	for _, a := range r.Attestations {
		fmt.Fprintf(w, "Attested: %s (%s)\n", a.PredicateType, a.Referrer)
	}
	return nil
}

// CopyText renders a copy result: where the bundle and each image went.
func CopyText(w io.Writer, r *bundle.CopyResult) error {
	fmt.Fprintf(w, "Copied %s to %s (%d sent, %d already there, %d mounted; %s)\n", r.Source, r.Destination, r.Copied, r.Skipped, r.Mounted, Size(r.Bytes))
	fmt.Fprintf(w, "Digest: %s\n", r.Digest)
	if r.PinnedReference != "" {
		fmt.Fprintf(w, "Pinned: %s\n", r.PinnedReference)
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(w, "Tags:   %s\n", strings.Join(r.Tags, ", "))
	}
	fmt.Fprintf(w, "Referrers: %d (signatures, attestations)\n", r.Referrers)
	for _, im := range r.Images {
		to := im.To
		if to == "" {
			to = "(in the archive)"
		}
		partial := ""
		if im.Partial {
			partial = " (only " + strings.Join(im.Platforms, ", ") + ")"
		}
		fmt.Fprintf(w, "  %s: %s -> %s%s\n", im.Name, im.From, to, partial)
	}
	if r.Record != "" {
		fmt.Fprintf(w, "Relocation record: %s\n", r.Record)
	}
	for _, f := range r.MirrorConfig {
		fmt.Fprintf(w, "Mirror configuration: %s\n", f)
	}
	return nil
}

// VerifyText renders a verified bundle: who signed what.
func VerifyText(w io.Writer, r *bundle.VerifyResult) error {
	fmt.Fprintf(w, "Verified %s@%s\n", r.Reference, r.Digest)
	for _, s := range r.Signatures {
		created := ""
		if s.Created != "" {
			created = ", " + s.Created
		}
		fmt.Fprintf(w, "  signed by %s (signature %s%s)\n", s.Key, s.Referrer, created)
	}
	for _, a := range r.Attestations {
		fmt.Fprintf(w, "  attested %s by %s (%s)\n", a.PredicateType, a.Key, a.Referrer)
	}
	return nil
}

// SignText renders a signature attached by `ferry bundle sign`.
func SignText(w io.Writer, r *bundle.SignResult) error {
	_, err := fmt.Fprintf(w, "Signed %s@%s\nSignature: %s\n", r.Reference, r.Digest, r.Signature)
	return err
}

// InfoText renders an inspected bundle.
func InfoText(w io.Writer, i *bundle.Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("Name", i.Name)
	row("Version", i.Version)
	row("Description", i.Description)
	row("Reference", i.PinnedReference)
	row("Digest", i.Digest)
	row("Artifact type", i.ArtifactType)
	row("Created", i.Created)
	row("Source", i.Source)
	row("Revision", i.Revision)
	tw.Flush()
	fmt.Fprintln(w, "\nImages:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTAG\tPINNED\tMEDIA TYPE")
	for _, im := range i.Images {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", im.Name, im.Tag, im.Pinned(), im.MediaType)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nLayers:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROLE\tTITLE\tMEDIA TYPE\tSIZE\tDIGEST")
	for _, l := range i.Layers {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.Role, l.Title, l.MediaType, Size(l.Size), l.Digest)
	}
	tw.Flush()
	if i.TerraformModuleSource != "" || i.OpenTofuModuleSource != "" {
		fmt.Fprintln(w, "\nModule source (for a module block's source; the Terraform layer by digest):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if i.TerraformModuleSource != "" {
			fmt.Fprintf(tw, "  Terraform:\t%s\n", i.TerraformModuleSource)
		}
		if i.OpenTofuModuleSource != "" {
			fmt.Fprintf(tw, "  OpenTofu:\t%s\n", i.OpenTofuModuleSource)
		}
		tw.Flush()
	}
	if len(i.Render) > 0 {
		fmt.Fprintln(w, "\nRendered at package time:")
		for _, r := range i.Render {
			fmt.Fprintf(w, "  %s: %s -> %s\n", r.Name, strings.Join(r.Command, " "), r.Output)
		}
	}
	if len(i.Referrers) > 0 {
		fmt.Fprintln(w, "\nReferrers (listed, not verified: ferry bundle verify checks them):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND	DIGEST	ARTIFACT TYPE	PREDICATE TYPE	CREATED")
		for _, r := range i.Referrers {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.Kind, r.Digest, r.ArtifactType, r.PredicateType, r.Created)
		}
		tw.Flush()
	}
	if r := i.Relocation; r != nil {
		fmt.Fprintf(w, "\nRelocated from %s:\n", r.Source)
		for _, im := range r.Images {
			fmt.Fprintf(w, "  %s: %s -> %s\n", im.Name, im.From, im.To)
		}
	}
	fmt.Fprintln(w, "\nAnnotations:")
	keys := make([]string, 0, len(i.Annotations))
	for k := range i.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, i.Annotations[k])
	}
	return nil
}

// PullText renders a pull result.
func PullText(w io.Writer, r *bundle.PullResult) error {
	fmt.Fprintf(w, "Pulled %s %s (%s)\n", r.Name, r.Version, r.PinnedReference)
	for _, role := range r.Roles {
		fmt.Fprintf(w, "  %s/%s\n", strings.TrimSuffix(r.Dir, "/"), role)
	}
	fmt.Fprintf(w, "Lock:   %s\n", r.LockFile)
	return nil
}
