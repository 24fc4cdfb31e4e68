package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
)

type rolloutOptions struct {
	option.Kube
	option.Format
	file      string
	selector  string
	outputDir string
	report    string
	// Overrides of fleet.yaml's rollout block; set says which were given.
	maxConcurrency int
	failureBudget  string
	pause          time.Duration
	deadline       string
	targetTimeout  time.Duration
	canary         string
	// The registry flags for resolving REF's tag.
	plainHTTP bool
	insecure  bool
	caFile    string

	ref bundle.Reference
}

func rolloutCmd() *cobra.Command {
	var opts rolloutOptions
	cmd := &cobra.Command{
		Use:   "rollout REF (-f fleet.yaml | -l SELECTOR)",
		Short: "Roll one bundle out to many environments, in waves, inside their deployment windows",
		Long: `Roll the bundle REF (host/repo:tag or host/repo@sha256:…; a tag is resolved to its digest once)
out to the targets of a fleet.yaml (-f), with its executor, or, with -l, to the environments a label
selector picks, syncing each one's Application with ferry's sync engine (a sync-only rollout).

Targets go in waves (the first is the canary), at most --max-concurrency at once, with --pause
between waves. What is done is read from the live Applications: a target whose Application is
already synced to the digest and healthy is not applied again, so running the same command after an
interruption continues where it stopped. A target whose deployment window is closed is deferred and
started when its window opens, unless that is after --deadline. When a wave's failure rate passes
--failure-budget, nothing new starts and the rollout halts. One rollout of a fleet runs at a time (a
Lease in the Argo CD namespace).

The report (stdout; --format json for the JSON report, --report FILE to also write it to a file)
gives every target one state: succeeded, failed (with its class), deferred, skipped or halted.
Progress goes to stderr: redrawn on a terminal, plain lines otherwise. The exit code is 0 when no
target failed or halted, the class code of the first failed target in the fleet's order when one
failed (docs/cli.md), 4 when targets remain deferred, 5 when the deadline passed before every target
started, 6 when another rollout of the fleet holds the lock.

Example - Roll release 1.4.0 out to the fleet of fleet.yaml:
  ferry fleet rollout registry.example.com/shop/bundle:1.4.0 -f ./fleet.yaml

Example - Sync the environments of the early ring only, two at a time, halting at the first failure:
  ferry fleet rollout registry.example.com/shop/bundle:1.4.0 -l ring=early --max-concurrency 2 --failure-budget 0

Example - A canary of one, then the rest, as a JSON report:
  ferry fleet rollout registry.example.com/shop/bundle@sha256:… -f ./fleet.yaml --canary 1 --format json`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			ref, err := bundle.ParseReference(strings.TrimPrefix(args[0], "oci://"))
			if err == nil && ref.IsLayout() {
				err = errors.New("an OCI layout is not something Argo CD syncs from")
			}
			if err == nil && ref.Tag == "" && ref.Digest == "" {
				err = errors.New("name a tag or a digest")
			}
			if err != nil {
				return option.Usagef("ferry fleet rollout host/repo:tag|host/repo@sha256:… (-f fleet.yaml | -l SELECTOR)", "name the bundle as it was pushed", fmt.Errorf("REF %q: %w", args[0], err))
			}
			opts.ref = ref
			if (opts.file == "") == (opts.selector == "") {
				return option.Usagef("ferry fleet rollout REF (-f fleet.yaml | -l SELECTOR)", "give the fleet as a fleet.yaml, or select environments for a sync-only rollout", errors.New("exactly one of -f/--file and -l/--selector is required"))
			}
			if opts.selector != "" {
				if _, err := labels.Parse(opts.selector); err != nil {
					return option.Usagef("-l, --selector SELECTOR", "use a Kubernetes label selector of the environments' labels, e.g. tier=canary", fmt.Errorf("-l/--selector %q: %w", opts.selector, err))
				}
			}
			if cmd.Flags().Changed("max-concurrency") && opts.maxConcurrency < 1 {
				return option.Usagef("--max-concurrency N", "use 1 or more", fmt.Errorf("--max-concurrency %d is less than 1", opts.maxConcurrency))
			}
			if cmd.Flags().Changed("target-timeout") && opts.targetTimeout <= 0 {
				return option.Usagef("--target-timeout DURATION", "e.g. 45m or 2h", fmt.Errorf("--target-timeout %s is not a positive duration", opts.targetTimeout))
			}
			if opts.failureBudget != "" {
				if _, err := fleet.ParsePercent(opts.failureBudget); err != nil {
					return option.Usagef("--failure-budget PERCENT", "e.g. 2 or 2% (0 halts at the first failure)", fmt.Errorf("--failure-budget: %w", err))
				}
			}
			if opts.pause < 0 {
				return option.Usagef("--pause DURATION", "e.g. 10m", fmt.Errorf("--pause %v is negative", opts.pause))
			}
			if opts.deadline != "" {
				if _, err := parseDeadline(opts.deadline, time.Now()); err != nil {
					return option.Usagef("--deadline DURATION|TIME", "a duration from now (6h) or an RFC 3339 time (2026-12-24T18:00:00Z)", err)
				}
			}
			if opts.canary != "" {
				if _, err := canaryWave(opts.canary); err != nil {
					return option.Usagef("--canary N|N%", "e.g. 1 or 5%", err)
				}
			}
			return opts.Kube.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runRollout(cmd, &opts) },
	}
	fs := cmd.Flags()
	fs.StringVarP(&opts.file, "file", "f", "", "the fleet.yaml: targets, waves and executor (docs/fleet.md)")
	fs.StringVarP(&opts.selector, "selector", "l", "", "sync-only rollout: a label selector of the environments (their AppProjects' labels), e.g. tier=canary")
	fs.IntVar(&opts.maxConcurrency, "max-concurrency", fleet.DefaultMaxConcurrency, "how many targets run at once (overrides rollout.maxConcurrency)")
	fs.StringVar(&opts.failureBudget, "failure-budget", "", fmt.Sprintf("halt when a wave's failed targets pass this percentage (overrides rollout.failureBudget; default %g%%)", fleet.DefaultFailureBudget))
	fs.DurationVar(&opts.pause, "pause", 0, "wait this long between waves (overrides rollout.pauseBetweenWaves)")
	fs.StringVar(&opts.deadline, "deadline", "", "start nothing after this: a duration from now or an RFC 3339 time (overrides rollout.deadline; default "+argocd.ShortDuration(fleet.DefaultDeadline)+")")
	fs.DurationVar(&opts.targetTimeout, "target-timeout", fleet.DefaultTargetTimeout, "stop a target's executor run after this long and fail it (timeout) (overrides rollout.targetTimeout)")
	fs.StringVar(&opts.canary, "canary", "", "size of the first wave: N targets or N% (replaces the first wave's size, or adds a canary wave)")
	fs.StringVar(&opts.outputDir, "output-dir", "", "write each target's executor output to DIR/TARGET.log (the report keeps the last lines either way)")
	fs.StringVar(&opts.report, "report", "", "also write the JSON report to this file")
	fs.BoolVar(&opts.plainHTTP, "plain-http", false, "use plain HTTP to resolve REF's tag")
	fs.BoolVar(&opts.insecure, "insecure", false, "skip TLS certificate verification of REF's registry")
	fs.StringVar(&opts.caFile, "ca-file", "", "PEM file of extra certificate authorities to trust for REF's registry")
	opts.Kube.ApplyFlags(fs)
	opts.Format.ApplyFlags(fs)
	return cmd
}

// parseDeadline reads a duration from now or an RFC 3339 time.
func parseDeadline(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--deadline %s is not positive", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--deadline %q is neither a duration nor an RFC 3339 time", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("--deadline %s has passed", s)
	}
	return t, nil
}

// canaryWave reads --canary: N targets or N percent.
func canaryWave(s string) (fleet.WaveSpec, error) {
	w := fleet.WaveSpec{Name: "canary"}
	if strings.HasSuffix(s, "%") {
		p, err := fleet.ParsePercent(s)
		if err != nil || p == 0 {
			return w, fmt.Errorf("--canary %q is not a percentage above 0", s)
		}
		w.Percent = p
		return w, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return w, fmt.Errorf("--canary %q is neither a count of 1 or more nor a percentage", s)
	}
	w.Count = n
	return w, nil
}

func runRollout(cmd *cobra.Command, opts *rolloutOptions) error {
	ctx := cmd.Context()
	var spec *fleet.Spec
	if opts.file != "" {
		var err error
		if spec, err = fleet.LoadSpec(opts.file); err != nil {
			return &option.Error{Err: err, Code: option.ExitPermanent, Recommendation: "Fix the fleet.yaml; the format is in docs/fleet.md."}
		}
	}
	c, err := opts.Kube.Client()
	if err != nil {
		return err
	}

	// One rollout of the fleet at a time, checked first: a second rollout is refused before it
	// reads anything. Losing the lock stops the rollout.
	lockName := ""
	if spec != nil {
		lockName = spec.Name
	} else {
		sum := sha256.Sum256([]byte(opts.selector))
		lockName = "selector-" + hex.EncodeToString(sum[:])[:12]
	}
	// Losing the lock halts the rollout: nothing new starts, running targets finish (cancelling a
	// half-done apply would be worse for the customer than letting it end).
	stop, lost := make(chan string, 1), make(chan error, 1)
	lock, err := fleet.AcquireLock(ctx, c, lockName, fleet.LockOptions{OnLost: func(err error) {
		lost <- err
		stop <- "the rollout's lock (lease " + fleet.LeaseName(lockName) + ") could not be renewed: " + err.Error()
	}})
	if err != nil {
		var le *fleet.LockedError
		if errors.As(err, &le) {
			return &option.Error{Err: err, Code: option.ExitConflict,
				Recommendation: "Wait for that rollout to end; a rollout that was killed leaves a lease that expires " + argocd.ShortDuration(le.Duration) + " after its last renewal."}
		}
		return opts.Kube.APIError(err)
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		lock.Release(rctx)
	}()

	// The bundle, by digest.
	remote := option.Remote{PlainHTTP: opts.plainHTTP, Insecure: opts.insecure, Registries: option.Registries{CAFile: opts.caFile},
		RequestTimeout: 60 * time.Second, IdleTimeout: 30 * time.Second, Retries: 5}
	rc, err := remote.Client(opts.ref.Registry)
	if err != nil {
		return err
	}
	info, err := bundle.Inspect(ctx, rc, opts.ref)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.ref, err)
	}
	b := fleet.Bundle{Reference: info.Reference, Digest: info.Digest, Version: info.Version}

	// Targets, waves, settings: fleet.yaml's, then the flags.
	now := time.Now()
	ro := fleet.RolloutOptions{MaxConcurrency: fleet.DefaultMaxConcurrency, FailureBudget: fleet.DefaultFailureBudget,
		Deadline: now.Add(fleet.DefaultDeadline), TargetTimeout: fleet.DefaultTargetTimeout, OutputDir: opts.outputDir, Observe: fleet.ObserveWith(c, b), Stop: stop}
	var (
		targets   []fleet.Target
		waveSpecs []fleet.WaveSpec
		ex        fleet.Executor
		name      string
	)
	if spec != nil {
		name, targets, waveSpecs = spec.Name, spec.Targets, spec.Rollout.Waves
		ro.MaxConcurrency, ro.FailureBudget, ro.Pause, ro.Deadline = spec.Rollout.MaxConcurrency, spec.Rollout.FailureBudget, spec.Rollout.PauseBetweenWaves, now.Add(spec.Rollout.Deadline)
		ro.TargetTimeout = spec.Rollout.TargetTimeout
		ex, err = fleet.NewExecutor(spec.Executor.Type, spec.Executor.Settings, fleet.ExecutorEnv{File: spec.File, Dir: spec.Dir, Client: c,
			SyncOptions: argocd.SyncOptions{VerifyBundle: bundle.Verifier(rc)}})
		if err != nil {
			code := option.ExitError
			if errors.Is(err, fleet.ErrInvalidSpec) {
				code = option.ExitPermanent
			}
			return &option.Error{Err: err, Code: code}
		}
	} else {
		name = lockName
		ex = fleet.NewSyncExecutor(c, argocd.SyncOptions{VerifyBundle: bundle.Verifier(rc)})
		lives, err := fleet.Observe(ctx, c, fleet.Selector{Labels: opts.selector}, b.Digest, now)
		if err != nil {
			return opts.Kube.APIError(err)
		}
		seen := map[string]bool{}
		for _, l := range lives {
			if seen[l.Environment] {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: environment %s has more than one Application; rolling out to %s only\n", l.Environment, targets[len(targets)-1].AppName())
				continue
			}
			seen[l.Environment] = true
			targets = append(targets, fleet.Target{Name: l.Environment, Application: l.Application, Labels: l.Labels})
		}
		if len(targets) == 0 {
			return &option.Error{Err: fmt.Errorf("no environment matches -l %q", opts.selector), Code: option.ExitPermanent,
				Recommendation: "Check the selector against the environments' labels: ferry fleet status -l '" + opts.selector + "'."}
		}
	}
	ro.RequireApplication = ex.Name() == "sync"
	fs := cmd.Flags()
	if fs.Changed("max-concurrency") {
		ro.MaxConcurrency = opts.maxConcurrency
	}
	if opts.failureBudget != "" {
		ro.FailureBudget, _ = fleet.ParsePercent(opts.failureBudget)
	}
	if fs.Changed("pause") {
		ro.Pause = opts.pause
	}
	if opts.deadline != "" {
		ro.Deadline, _ = parseDeadline(opts.deadline, now)
	}
	if fs.Changed("target-timeout") {
		ro.TargetTimeout = opts.targetTimeout
	}
	if opts.canary != "" {
		w, _ := canaryWave(opts.canary)
		if len(waveSpecs) > 0 {
			w.Name = waveSpecs[0].Name
			waveSpecs = append([]fleet.WaveSpec{w}, waveSpecs[1:]...)
		} else {
			waveSpecs = []fleet.WaveSpec{w}
		}
	}
	waves, err := fleet.PlanWaves(targets, waveSpecs)
	if err != nil {
		if opts.canary != "" {
			return option.Usagef("--canary N|N%", "", err)
		}
		return &option.Error{Err: err, Code: option.ExitPermanent, Recommendation: "Fix rollout.waves in fleet.yaml."}
	}
	ro.Fleet = name

	prog := newProgress(cmd.ErrOrStderr(), opts.Format.Progress(cmd.ErrOrStderr()) != nil)
	ro.OnEvent = prog.event
	fmt.Fprintf(prog, "rolling %s (%s) out to %d targets in %d waves with the %s executor; lock %s held by %s\n",
		b.Pinned(), orDash(b.Version), len(targets), len(waves), ex.Name(), fleet.LeaseName(name), lock.Holder())
	rep, err := fleet.Rollout(ctx, waves, b, ex, ro)
	prog.stop()
	if err != nil {
		return err
	}
	if opts.report != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if werr := os.WriteFile(opts.report, append(data, '\n'), 0o600); werr != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: could not write the report: %v\n", werr)
		}
	}
	if err := opts.Format.Render(cmd.OutOrStdout(), rep, func(w io.Writer) error { return reportText(w, rep) }); err != nil {
		return err
	}
	if rep.Interrupted && ctx.Err() != nil {
		return context.Cause(ctx) // a signal: exit 130 or 143
	}
	select {
	case err := <-lost:
		return &option.Error{Err: fmt.Errorf("lost the fleet's lock: %w", err), Code: option.ExitConflict, Recommendation: "Another rollout may have taken it; see who holds lease " + fleet.LeaseName(name) + ", then run the same command again: finished targets are not applied again."}
	default:
	}
	return rolloutOutcome(rep)
}

// rolloutOutcome is the command's error for a report: nil when no target failed or halted.
func rolloutOutcome(rep *fleet.Report) error {
	n := len(rep.Targets)
	if f := rep.Failures(); len(f) > 0 {
		msg := fmt.Sprintf("%d of %d targets failed", len(f), n)
		if rep.Halted {
			msg += "; halted: " + rep.HaltReason
		}
		return &option.Error{Err: errors.New(msg), Code: option.ClassCode(argocd.Class(f[0].Class)),
			Recommendation: "See each failure in the report (and its output); fix it and run the same command again: finished targets are not applied again."}
	}
	if h := rep.Counts[fleet.TargetHalted]; h > 0 {
		return &option.Error{Err: fmt.Errorf("%d of %d targets not started: the rollout deadline passed", h, n), Code: option.ExitStuck,
			Recommendation: "Run the same command again with a later --deadline: finished targets are not applied again."}
	}
	if d := rep.Counts[fleet.TargetDeferred]; d > 0 {
		return &option.Error{Err: fmt.Errorf("%d of %d targets deferred: their deployment window does not open before the rollout deadline", d, n), Code: option.ExitWindow,
			Recommendation: "Run the same command again when their windows are open (ferry fleet status shows when), or with a later --deadline."}
	}
	return nil
}

// reportText writes the report as a table, the counts, and the halt.
func reportText(w io.Writer, rep *fleet.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tWAVE\tSTATE\tCLASS\tMESSAGE")
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Wave, t.State, orDash(t.Class), truncate(oneLine(t.Message), 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", countsText(rep.Counts))
	if rep.Halted {
		fmt.Fprintf(w, "Halted: %s\n", rep.HaltReason)
	}
	for _, t := range rep.Failures() {
		fmt.Fprintf(w, "\nFailed: %s (%s): %s\n", t.Name, t.Class, t.Message)
		if t.Output != "" {
			fmt.Fprintf(w, "  output: %s\n", t.Output)
		}
		if tail := strings.TrimSpace(t.OutputTail); tail != "" {
			lines := strings.Split(tail, "\n")
			if len(lines) > 10 {
				lines = lines[len(lines)-10:]
			}
			for _, l := range lines {
				fmt.Fprintf(w, "  | %s\n", l)
			}
		}
	}
	return nil
}

func countsText(counts map[fleet.TargetState]int) string {
	var parts []string
	for _, s := range fleet.SortedTargetStates(counts) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// progress shows a rollout's events on stderr: on a terminal, one line per finished, deferred or
// started target above a status line redrawn in place; elsewhere plain lines, without ANSI.
type progress struct {
	w     io.Writer
	live  bool
	shown bool
	last  string
}

func newProgress(w io.Writer, live bool) *progress { return &progress{w: w, live: live} }

// Write prints p (whole lines) above the status line.
func (p *progress) Write(b []byte) (int, error) {
	p.print(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func (p *progress) print(line string) {
	var sb strings.Builder
	if p.live && p.shown {
		sb.WriteString("\r\x1b[J")
	}
	sb.WriteString(line + "\n")
	if p.live && p.last != "" {
		sb.WriteString(p.last)
		p.shown = true
	}
	io.WriteString(p.w, sb.String())
}

func (p *progress) event(e fleet.Event) {
	stamp := e.Time.Format(time.TimeOnly)
	line := stamp + " " + e.Message
	if e.Target != "" {
		line = fmt.Sprintf("%s %s [%s] %s: %s", stamp, e.Target, e.Wave, e.State, oneLine(e.Message))
	}
	if p.live {
		p.last = fmt.Sprintf("%s  %s", stamp, countsText(e.Counts))
	}
	p.print(line)
}

// stop erases the status line.
func (p *progress) stop() {
	if p.live && p.shown {
		io.WriteString(p.w, "\r\x1b[J")
		p.shown = false
	}
}
