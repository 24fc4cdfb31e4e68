package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
)

type statusOptions struct {
	option.Kube
	option.Format
	bundleRef    string
	selector     string
	environments []string
	watch        bool
	interval     time.Duration
	// The registry flags for resolving a tag of --bundle.
	plainHTTP bool
	insecure  bool
	caFile    string

	ref bundle.Reference
}

// statusReport is the JSON shape of `ferry fleet status`.
type statusReport struct {
	Bundle       string       `json:"bundle,omitempty"`
	Digest       string       `json:"digest,omitempty"`
	Version      string       `json:"version,omitempty"`
	ObservedAt   string       `json:"observedAt"`
	Environments []fleet.Live `json:"environments"`
	Counts       fleet.Counts `json:"counts"`
}

func statusCmd() *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [--bundle REF] [-l SELECTOR] [--environment NAME]...",
		Short: "Show where a bundle is across the fleet: revision, sync, health, window and last failure per environment",
		Long: `Show, for every environment ferry manages (or those -l and --environment select), its Application's
revision, sync and health status, whether its deployment window is open now, and its last failure,
with the counts per state: done, in progress, failed (by class), unhealthy, out of date, window
closed, missing. It reads the fleet with one paginated list of environments and one of
Applications, whatever its size.

With --bundle, every Application is judged against that bundle: a tag is resolved to its digest
with the registry (--plain-http, --insecure and --ca-file apply to it), a digest is used as it is,
and a repository alone judges each Application against its own targetRevision. An Application
counts as done only when Argo CD has compared and synced it at exactly that digest, it is Healthy
and no operation runs: a Synced status left from the previous revision is shown as OutOfSync.

--watch redraws the table every --interval on a terminal, and otherwise prints the table (or, with
--format json, one JSON document on one line) each time something changed, until interrupted.

Example - Where is release 1.4.0 across the fleet:
  ferry fleet status --bundle registry.example.com/shop/bundle:1.4.0

Example - The canary environments, as JSON:
  ferry fleet status -l tier=canary --format json

Example - One customer, as a count for a script:
  ferry fleet status --environment acme --format go-template='{{.counts.done}}/{{.counts.total}} done'`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			if opts.bundleRef != "" {
				ref, err := bundle.ParseReference(strings.TrimPrefix(opts.bundleRef, "oci://"))
				if err == nil && ref.IsLayout() {
					err = errors.New("an OCI layout is not something Argo CD syncs from")
				}
				if err != nil {
					return option.Usagef("--bundle host/repo[:tag|@sha256:…]", "name the bundle's repository as Applications pin it, with a tag or digest to judge them against", fmt.Errorf("--bundle %q: %w", opts.bundleRef, err))
				}
				opts.ref = ref
			}
			if opts.selector != "" {
				if _, err := labels.Parse(opts.selector); err != nil {
					return option.Usagef("-l, --selector SELECTOR", "use a Kubernetes label selector of the environments' labels, e.g. tier=canary or 'region in (eu,us)'", fmt.Errorf("-l/--selector %q: %w", opts.selector, err))
				}
			}
			for _, n := range opts.environments {
				if n == "" || argocd.ProjectEnvironment(n) != n {
					return option.Usagef("--environment NAME", "name an environment (its AppProject)", fmt.Errorf("--environment %q is not an environment name", n))
				}
			}
			if opts.interval <= 0 {
				return option.Usagef("--interval DURATION", "use a positive duration, e.g. 5s", fmt.Errorf("--interval %v is not positive", opts.interval))
			}
			return opts.Kube.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runStatus(cmd, &opts) },
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.bundleRef, "bundle", "", "the bundle to judge Applications against: host/repo:tag, host/repo@sha256:…, or host/repo for each one's own targetRevision")
	fs.StringVarP(&opts.selector, "selector", "l", "", "label selector of the environments (their AppProjects' labels), e.g. tier=canary")
	fs.StringArrayVar(&opts.environments, "environment", nil, "environment `NAME` to show; repeatable")
	fs.BoolVarP(&opts.watch, "watch", "w", false, "keep watching: redraw on a terminal, else print each change")
	fs.DurationVar(&opts.interval, "interval", 2*time.Second, "how often --watch reads the fleet")
	fs.BoolVar(&opts.plainHTTP, "plain-http", false, "use plain HTTP to resolve the tag of --bundle")
	fs.BoolVar(&opts.insecure, "insecure", false, "skip TLS certificate verification of the registry of --bundle")
	fs.StringVar(&opts.caFile, "ca-file", "", "PEM file of extra certificate authorities to trust for the registry of --bundle")
	opts.Kube.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

func runStatus(cmd *cobra.Command, opts *statusOptions) error {
	ctx := cmd.Context()
	rep := statusReport{}
	sel := fleet.Selector{Labels: opts.selector, Names: opts.environments}
	if opts.bundleRef != "" {
		rep.Bundle = opts.ref.String()
		sel.RepoURL = opts.ref.OCIURL()
		rep.Digest = opts.ref.Digest
		if rep.Digest == "" && opts.ref.Tag != "" {
			info, err := resolve(ctx, opts)
			if err != nil {
				return err
			}
			rep.Digest, rep.Version = info.Digest, info.Version
		}
	}
	c, err := opts.Kube.Client()
	if err != nil {
		return err
	}
	observe := func() (statusReport, error) {
		now := time.Now()
		ls, err := fleet.Observe(ctx, c, sel, rep.Digest, now)
		if err != nil {
			if errors.Is(err, fleet.ErrInvalidSelector) {
				return rep, option.Usagef("-l, --selector SELECTOR", "", err)
			}
			return rep, opts.Kube.APIError(err)
		}
		if missing := missingNames(opts.environments, ls); len(missing) > 0 {
			return rep, &option.Error{Err: fmt.Errorf("--environment %s: no such environment managed by ferry in namespace %s", strings.Join(missing, ", "), opts.Kube.Namespace),
				Code: option.ExitPermanent, Recommendation: "Check the names and --argocd-namespace; `ferry fleet status` without --environment lists every environment."}
		}
		r := rep
		r.ObservedAt = now.UTC().Format(time.RFC3339)
		r.Environments = ls
		if r.Environments == nil {
			r.Environments = []fleet.Live{}
		}
		r.Counts = fleet.Count(ls)
		return r, nil
	}
	r, err := observe()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if !opts.watch {
		return opts.Format.Render(out, r, func(w io.Writer) error { return writeTable(w, r) })
	}
	return watchStatus(ctx, out, opts, r, observe)
}

// watchStatus re-reads the fleet every interval until ctx ends. On a terminal (text) the screen is
// redrawn each time; otherwise what changed is printed: the table, or one JSON document on one line.
func watchStatus(ctx context.Context, out io.Writer, opts *statusOptions, r statusReport, observe func() (statusReport, error)) error {
	tty := false
	if f, ok := out.(*os.File); ok && opts.Format.Type == "text" && term.IsTerminal(int(f.Fd())) {
		tty = true
	}
	var last []byte
	for {
		var buf bytes.Buffer
		var err error
		switch {
		case opts.Format.Type == "json":
			err = json.NewEncoder(&buf).Encode(r)
		default:
			err = opts.Format.Render(&buf, r, func(w io.Writer) error { return writeTable(w, r) })
		}
		if err != nil {
			return err
		}
		// What changed is judged without the time of the observation.
		key := r
		key.ObservedAt = ""
		cur, _ := json.Marshal(key)
		switch {
		case tty:
			fmt.Fprint(out, "\x1b[H\x1b[2J")
			fmt.Fprintf(out, "Every %s, at %s (Ctrl-C to stop)\n\n", opts.interval, r.ObservedAt)
			out.Write(buf.Bytes())
		case !bytes.Equal(cur, last):
			if last != nil && opts.Format.Type != "json" {
				fmt.Fprintln(out)
			}
			out.Write(buf.Bytes())
		}
		last = cur
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.interval):
		}
		next, err := observe()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		r = next
	}
}

// resolve reads the bundle --bundle names by tag, for its digest and version.
func resolve(ctx context.Context, opts *statusOptions) (*bundle.Info, error) {
	remote := option.Remote{PlainHTTP: opts.plainHTTP, Insecure: opts.insecure, Registries: option.Registries{CAFile: opts.caFile},
		RequestTimeout: 60 * time.Second, IdleTimeout: 30 * time.Second, Retries: 5}
	client, err := remote.Client(opts.ref.Registry)
	if err != nil {
		return nil, err
	}
	info, err := bundle.Inspect(ctx, client, opts.ref)
	if err != nil {
		return nil, fmt.Errorf("--bundle %s: %w", opts.ref, err)
	}
	return info, nil
}

// missingNames returns the names asked for that are no environment of ls.
func missingNames(names []string, ls []fleet.Live) []string {
	var out []string
	for _, n := range names {
		if !slices.ContainsFunc(ls, func(l fleet.Live) bool { return l.Environment == n }) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// failureWidth is where the LAST FAILURE column is cut.
const failureWidth = 72

func writeTable(w io.Writer, r statusReport) error {
	if r.Bundle != "" {
		what := r.Bundle
		switch {
		case r.Digest != "" && r.Version != "":
			what += fmt.Sprintf(" = %s (version %s)", r.Digest, r.Version)
		case r.Digest == "":
			what += " (each Application against its own targetRevision)"
		}
		fmt.Fprintf(w, "Bundle: %s\n\n", what)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tAPPLICATION\tSTATE\tREVISION\tSYNC\tHEALTH\tWINDOW\tLAST FAILURE")
	for _, l := range r.Environments {
		app, rev, sync, health := l.Application, revision(l, r), l.SyncStatus, l.HealthStatus
		if !l.Found {
			app, rev, sync, health = "-", "-", "-", "-"
		}
		if l.Override {
			app += " (override)"
		}
		failure := "-"
		if l.FailureClass != "" {
			failure = truncate(l.FailureClass+": "+l.FailureMessage, failureWidth)
		}
		state := l.State.Text()
		if l.State == fleet.StateFailed {
			state += " (" + l.FailureClass + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Environment, app, state, rev, orDash(sync), orDash(health), windowText(l), failure)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Counts)
	return err
}

// revision is the REVISION column: the short digest deployed (the last successful sync), its
// version when it is the bundle's, and where the Application is told to go when that differs.
func revision(l fleet.Live, r statusReport) string {
	s := short(l.Deployed)
	if l.Deployed == "" {
		s = "(none)"
	}
	if r.Version != "" && l.Deployed == r.Digest {
		s += " (" + r.Version + ")"
	}
	if l.TargetRevision != "" && l.TargetRevision != l.Deployed {
		s += " -> " + short(l.TargetRevision)
	}
	return s
}

// short cuts a digest to its algorithm and 12 hex digits, as Argo CD and docker show them.
func short(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

func windowText(l fleet.Live) string {
	switch {
	case l.WindowError != "":
		return "invalid"
	case l.WindowOpen:
		return "open"
	case l.WindowNextOpen != nil:
		return "closed until " + l.WindowNextOpen.UTC().Format("2006-01-02T15:04Z07:00")
	}
	return "closed"
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
