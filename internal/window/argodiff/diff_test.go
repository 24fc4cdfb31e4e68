package argodiff

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
	"github.com/gobwas/glob"
	"github.com/robfig/cron/v3"
	log "github.com/sirupsen/logrus"
)

// This file runs one case through both engines and explains every difference.
//
// Argo CD evaluates a window at time.Now() only (the zone offset it applies is also the one at
// time.Now()), so its code runs inside a testing/synctest bubble whose fake clock is moved to each
// instant compared. Its clock starts at 2000-01-01T00:00:00Z and only moves forward, so instants
// are from 2001 on; they stay before 2090 because robfig/cron's Next gives up after five years,
// and a 29 February schedule has no match between 2096 and 2104.

// Kinds of deliberate difference, each documented in docs/windows.md ("Checked against Argo CD").
// A difference of any other kind fails the test.
const (
	// Argo CD counts a window as active on (start, start+duration); ferry on [start, start+duration).
	kindStartInstant = "start-instant"
	// Near a change of the zone's UTC offset: Argo CD applies the offset of the evaluated instant to
	// every start; ferry converts each start with the offset in force then. Verified by evaluating
	// ferry with a fixed zone of the offset at the instant, which must then agree.
	kindDST = "dst"
	// ferry refuses these windows; Argo CD accepts them at run time.
	kindInvalidKind         = "invalid-kind"          // kind other than allow/deny: Argo CD ignores the window
	kindTZPrefix            = "tz-prefix"             // TZ= or CRON_TZ= schedule prefix: Argo CD shifts twice
	kindNeverFires          = "never-fires"           // no date matches: Argo CD treats the window as always active
	kindNonPositiveDuration = "non-positive-duration" // duration ≤ 0: Argo CD never activates the window
	kindShortDuration       = "short-duration"        // duration under a minute
	kindSubSecondDuration   = "sub-second-duration"   // duration not a whole number of seconds
	kindUnknownZone         = "unknown-zone"          // Argo CD logs a warning and uses UTC
	kindLocalZone           = "local-zone"            // "Local": the host's zone
	kindLongDescription     = "long-description"      // over 255 bytes: Argo CD's API server refuses it, its controller ignores it
	kindDuplicate           = "duplicate"             // same kind, schedule and duration: Argo CD's API server refuses it
	kindUnsupportedGlob     = "unsupported-glob"      // a glob form ferry refuses ({a,b}, escapes, mixed classes) that Argo CD accepts
	kindInvalidGlob         = "invalid-glob"          // a malformed glob: ferry refuses it, Argo CD logs it and matches nothing
)

// deliberate is the allow-list of difference kinds.
var deliberate = []string{
	kindStartInstant, kindDST, kindInvalidKind, kindTZPrefix, kindNeverFires, kindNonPositiveDuration,
	kindShortDuration, kindSubSecondDuration, kindUnknownZone, kindLocalZone, kindLongDescription,
	kindDuplicate, kindUnsupportedGlob, kindInvalidGlob,
}

func init() { log.SetOutput(io.Discard) } // Argo CD logs a warning per unknown zone and bad glob

// win is one sync window: its schedule part and its scope.
type win struct {
	Spec  window.Spec
	Scope window.Scope
}

// tcase is one differential case: the project's windows, the application, the instant.
type tcase struct {
	Windows []win
	App     window.Target
	At      time.Time
}

// outcome is what a case produced: the deliberate differences seen (kind → count) at the case's
// instant and at the next openings and closings ferry reports, and the unexplained ones.
type outcome struct {
	kinds     map[string]int
	nextKinds map[string]int
	failures  []string
	compared  int // decisions compared
}

func (o *outcome) add(kind string) { o.addTo(&o.kinds, kind) }

func (o *outcome) addTo(m *map[string]int, kind string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[kind]++
}

func (o *outcome) failf(format string, args ...any) {
	o.failures = append(o.failures, fmt.Sprintf(format, args...))
}

func (w win) argo() *v1alpha1.InlineSyncWindow {
	return &v1alpha1.InlineSyncWindow{
		Kind: w.Spec.Kind, Schedule: w.Spec.Schedule, Duration: w.Spec.Duration, TimeZone: w.Spec.TimeZone,
		ManualSync: w.Spec.ManualSync, Description: w.Spec.Description,
		Applications: w.Scope.Applications, Namespaces: w.Scope.Namespaces, Clusters: w.Scope.Clusters,
		UseAndOperator: w.Scope.AndOperator,
	}
}

func (c tcase) argoApp() *v1alpha1.Application {
	app := &v1alpha1.Application{}
	app.Name = c.App.Application
	app.Spec.Destination = v1alpha1.ApplicationDestination{Server: c.App.Server, Namespace: c.App.Namespace, Name: c.App.Name}
	return app
}

// argoState is Argo CD's answer at one instant.
type argoState struct {
	active    []bool // InlineSyncWindow.Active per window
	activeErr []error
	manual    bool // SyncWindows.CanSync(true, nil)
	auto      bool // SyncWindows.CanSync(false, nil)
	err       error
}

// argoAt evaluates ws with Argo CD's code at each instant (Unix seconds, from 2001 on).
func argoAt(t *testing.T, ws v1alpha1.SyncWindows, instants []int64) map[int64]argoState {
	xs := slices.Clone(instants)
	slices.Sort(xs)
	xs = slices.Compact(xs)
	out := make(map[int64]argoState, len(xs))
	synctest.Test(t, func(*testing.T) {
		for _, x := range xs {
			if d := time.Unix(x, 0).Sub(time.Now()); d > 0 {
				time.Sleep(d)
			}
			var s argoState
			for _, w := range ws {
				a, err := recovered(w.Active)
				s.active, s.activeErr = append(s.active, a), append(s.activeErr, err)
			}
			var errM, errA error
			s.manual, errM = recovered(func() (bool, error) { return ws.CanSync(true, nil) })
			s.auto, errA = recovered(func() (bool, error) { return ws.CanSync(false, nil) })
			s.err = errors.Join(errM, errA)
			out[x] = s
		}
	})
	return out
}

// errArgoPanic marks a panic in Argo CD's code: robfig/cron's parser panics on a TZ= or
// CRON_TZ= prefix that no space follows.
var errArgoPanic = errors.New("Argo CD panicked")

// recovered calls f, turning a panic into an error wrapping errArgoPanic.
func recovered(f func() (bool, error)) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("%w: %v", errArgoPanic, r)
		}
	}()
	return f()
}

// argoDecide applies Argo CD's CanSync to a vector of window activities: each window becomes
// one that is always active ("* * * * *" for 1h) or never active (duration 0s), with its kind
// and manualSync, so the answer does not depend on the clock.
func argoDecide(ws []window.Window, active []bool, manual bool) bool {
	var sw v1alpha1.SyncWindows
	for i, w := range ws {
		d := "0s"
		if active[i] {
			d = "1h"
		}
		sw = append(sw, &v1alpha1.InlineSyncWindow{Kind: w.Spec().Kind, Schedule: "* * * * *", Duration: d, ManualSync: w.Spec().ManualSync})
	}
	ok, err := sw.CanSync(manual, nil)
	if err != nil {
		panic(err)
	}
	return ok
}

// ferryActive reports whether window w is active at x. On every tenth call it also checks
// Window.Active against Evaluate with w alone (an active allow opens, an active deny closes).
func ferryActive(o *outcome, w window.Window, x time.Time) bool {
	a := w.Active(x)
	if activeCalls++; activeCalls%10 == 0 {
		if e := window.Evaluate([]window.Window{w}, x, false).Open == (w.Spec().Kind == "allow"); e != a {
			o.failf("window %+v at %s: Active() = %v, but Evaluate with it alone says %v", w.Spec(), x.Format(time.RFC3339), a, e)
		}
	}
	return a
}

var activeCalls int

// constantZones have had one UTC offset since long before 2001; with Etc/GMT±h (whole hours
// from −12 to +14) they give a fixed zone for most offsets.
var constantZones = []string{"Asia/Kolkata", "Asia/Kathmandu", "Asia/Yangon", "Asia/Kabul", "Australia/Darwin", "Pacific/Marquesas"}

// fixedZone returns an IANA zone with loc's UTC offset at x and no change of it from d before x
// to a day after, when there is one.
func fixedZone(loc *time.Location, x time.Time, d time.Duration) (string, bool) {
	_, off := x.In(loc).Zone()
	cands := slices.Clone(constantZones)
	if off%3600 == 0 && off >= -12*3600 && off <= 14*3600 {
		cands = append([]string{fmt.Sprintf("Etc/GMT%+d", -off/3600)}, cands...)
		if off == 0 {
			cands[0] = "UTC"
		}
	}
	for _, name := range cands {
		l, err := time.LoadLocation(name)
		if err != nil {
			continue
		}
		if _, o := x.In(l).Zone(); o == off && !changes(l, x.Add(-d-24*time.Hour), x.Add(24*time.Hour)) {
			return name, true
		}
	}
	return "", false
}

// changes reports whether loc's UTC offset changes between from and to.
func changes(loc *time.Location, from, to time.Time) bool {
	_, off := from.In(loc).Zone()
	for t := from; t.Before(to); {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			return false
		}
		if _, o := end.In(loc).Zone(); o != off {
			return true
		}
		t = end
	}
	return false
}

// specParser is Argo CD's cron dialect.
var specParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// check runs c through both engines.
func check(t *testing.T, c tcase) outcome {
	var o outcome
	app := c.argoApp()

	// 1. Which windows apply to the application.
	var all v1alpha1.SyncWindows
	for _, w := range c.Windows {
		all = append(all, w.argo())
	}
	matched := map[*v1alpha1.InlineSyncWindow]bool{}
	if m := all.Matches(app); m != nil {
		for _, w := range *m {
			matched[w] = true
		}
	}
	var specs []window.Spec
	var argoWs v1alpha1.SyncWindows
	for i, w := range c.Windows {
		am := matched[all[i]]
		if am {
			specs = append(specs, w.Spec)
			argoWs = append(argoWs, all[i])
		}
		fm := w.Scope.Matches(c.App)
		var unsupported, malformed bool
		for _, p := range slices.Concat(w.Scope.Applications, w.Scope.Namespaces, w.Scope.Clusters) {
			_, ferr := window.Glob(p, "")
			_, gerr := glob.Compile(p)
			switch {
			case ferr == nil && gerr != nil:
				o.failf("window %d: ferry accepts the glob %q, Argo CD cannot compile it: %v", i, p, gerr)
			case ferr != nil && gerr == nil:
				unsupported = true
			case ferr != nil:
				malformed = true
			}
		}
		switch {
		case unsupported:
			o.add(kindUnsupportedGlob)
		case fm != am:
			o.failf("window %d: Scope.Matches(%+v) = %v, Argo CD Matches = %v", i, c.App, fm, am)
		case malformed:
			o.add(kindInvalidGlob)
		}
	}

	// 2. Validity of the windows that apply.
	x0 := c.At.Unix()
	ws, perr := window.Parse(specs, nil)
	argo := argoAt(t, argoWs, []int64{x0})[x0]
	if perr != nil {
		var ses []*window.SpecError
		for _, e := range perr.(interface{ Unwrap() []error }).Unwrap() {
			var se *window.SpecError
			if !errors.As(e, &se) {
				o.failf("Parse() error %v is not a *SpecError", e)
				return o
			}
			ses = append(ses, se)
		}
		// Per window: what ferry refuses it for, and whether Argo CD's run-time parsing
		// (schedule, duration) refuses it too.
		type refusal struct {
			kinds []string
			both  bool
		}
		byIndex := map[int]*refusal{}
		for _, se := range ses {
			r := byIndex[se.Index]
			if r == nil {
				r = &refusal{}
				byIndex[se.Index] = r
			}
			k, both := classifyRefusal(se, specs[se.Index])
			switch {
			case both:
				r.both = true
			case k == "":
				o.failf("ferry refuses window %s for an unexpected reason: %v", se.Label, se)
			default:
				r.kinds = append(r.kinds, k)
			}
		}
		stricter := false
		for i, r := range byIndex {
			aerr := argo.activeErr[i]
			switch {
			case r.both:
				if aerr == nil {
					o.failf("window[%d]: ferry and Argo CD's parser refuse it, but Argo CD's Active() did not fail", i)
				}
			case aerr != nil && slices.Contains(r.kinds, kindTZPrefix) && errors.Is(aerr, errArgoPanic):
				stricter = true
				o.add(kindTZPrefix) // ferry refuses what crashes Argo CD's parser
			default:
				for _, k := range r.kinds {
					stricter = true
					o.add(k)
					verifyArgoLenient(&o, k, r.kinds, argo.active[i], aerr, c.At)
				}
			}
		}
		for i, err := range argo.activeErr {
			if err != nil && !slices.ContainsFunc(ses, func(se *window.SpecError) bool { return se.Index == i }) {
				o.failf("window[%d]: Argo CD refuses it (%v), ferry accepts it", i, err)
			}
		}
		if !stricter && argo.err == nil {
			o.failf("ferry refuses the windows (%v), Argo CD's CanSync does not", perr)
		}
		return o
	}
	for i, err := range argo.activeErr {
		if err != nil {
			o.failf("window[%d] %+v: Argo CD refuses it (%v), ferry accepts it", i, specs[i], err)
		}
	}
	if argo.err != nil {
		o.failf("Argo CD's CanSync fails (%v), ferry accepts the windows", argo.err)
	}
	if len(o.failures) > 0 {
		return o
	}

	// 3. The decision at the instant, its next opening and closing, and the instants just before.
	type probe struct {
		x      int64
		manual bool
		what   string
		want   *bool // ferry's own promise at x: open (NextOpen) or closed (NextClose)
	}
	probes := []probe{{x0, true, "at", nil}, {x0, false, "at", nil}}
	for _, manual := range []bool{true, false} {
		st := window.Evaluate(ws, c.At, manual)
		for _, n := range []struct {
			name string
			t    *time.Time
			open bool
		}{{"NextOpen", st.NextOpen, true}, {"NextClose", st.NextClose, false}} {
			if n.t == nil || n.t.Unix() >= time.Date(2095, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
				continue
			}
			open, closed := n.open, !n.open
			probes = append(probes, probe{n.t.Unix(), manual, n.name, &open}, probe{n.t.Unix() - 1, manual, "a second before " + n.name, &closed})
		}
	}
	var xs []int64
	for _, p := range probes {
		xs = append(xs, p.x, p.x+1)
	}
	states := argoAt(t, argoWs, xs)
	for _, p := range probes {
		at := time.Unix(p.x, 0).UTC()
		got := window.Evaluate(ws, at, p.manual).Open
		if p.want != nil && got != *p.want {
			o.failf("Evaluate(%s, manual=%v).Open = %v, want %v (%s)", at.Format(time.RFC3339), p.manual, got, *p.want, p.what)
		}
		a := states[p.x]
		argoOpen := a.auto
		if p.manual {
			argoOpen = a.manual
		}
		o.compared++
		// Per window: which ones are active, and why they differ.
		fact := make([]bool, len(ws))
		var kinds []string
		for i, w := range ws {
			fact[i] = ferryActive(&o, w, at)
			if fact[i] == a.active[i] {
				continue
			}
			k := explainActive(&o, w, at, a.active[i], states[p.x+1].active[i])
			if k == "" {
				o.failf("%s %s: window[%d] %+v: ferry active = %v, Argo CD active = %v", p.what, at.Format(time.RFC3339), i, w.Spec(), fact[i], a.active[i])
				continue
			}
			kinds = append(kinds, k)
		}
		if len(kinds) == 0 {
			if got != argoOpen {
				o.failf("%s %s (manual=%v): Evaluate().Open = %v, Argo CD CanSync = %v, with the same active windows", p.what, at.Format(time.RFC3339), p.manual, got, argoOpen)
			}
			continue
		}
		// The windows' activities differ for a deliberate reason: ferry's decision must be
		// Argo CD's decision on ferry's activities.
		if want := argoDecide(ws, fact, p.manual); got != want {
			o.failf("%s %s (manual=%v): Evaluate().Open = %v, Argo CD CanSync on ferry's active windows = %v", p.what, at.Format(time.RFC3339), p.manual, got, want)
		}
		if got != argoOpen {
			m := &o.kinds
			if p.x != x0 {
				m = &o.nextKinds
			}
			for _, k := range slices.Compact(slices.Sorted(slices.Values(kinds))) {
				o.addTo(m, k)
			}
		}
	}
	return o
}

// explainActive returns the kind of a difference in one window's activity at x, or "" when it
// is not a deliberate one. argoNext is Argo CD's answer a second later.
func explainActive(o *outcome, w window.Window, x time.Time, argo, argoNext bool) string {
	ferry := !argo
	if ferry && argoNext {
		// Argo CD: inactive at x, active a second later: a window starts at x (starts are whole
		// seconds apart), and ferry counts the start instant as active.
		return kindStartInstant
	}
	loc, err := time.LoadLocation(w.Spec().TimeZone)
	if err != nil {
		return ""
	}
	d, _ := time.ParseDuration(w.Spec().Duration)
	name, ok := fixedZone(loc, x, d)
	if !ok {
		// No zone has this offset without changes (Australia/Lord_Howe's +10:30): the difference
		// must at least be within reach of a change.
		if changes(loc, x.Add(-d-3*time.Hour), x.Add(3*time.Hour)) {
			return kindDST
		}
		return ""
	}
	s := w.Spec()
	s.TimeZone = name
	fws, err := window.Parse([]window.Spec{s}, nil)
	if err != nil {
		return ""
	}
	if ferryActive(o, fws[0], x) == ferry {
		return "" // the zone's offset changes do not explain ferry's answer
	}
	return kindDST // with the offset at x fixed, ferry gives Argo CD's answer
}

// classifyRefusal names the deliberate difference behind one problem Parse reports; both is true
// when Argo CD's run-time parsing refuses the window too.
func classifyRefusal(se *window.SpecError, s window.Spec) (kind string, both bool) {
	switch se.Field {
	case "kind":
		return kindInvalidKind, false
	case "schedule":
		_, err := recovered(func() (bool, error) { _, err := specParser.Parse(s.Schedule); return true, err })
		tz := strings.HasPrefix(s.Schedule, "TZ=") || strings.HasPrefix(s.Schedule, "CRON_TZ=")
		switch {
		case tz && errors.Is(err, errArgoPanic):
			return kindTZPrefix, false // Argo CD's parser panics
		case err != nil:
			return "", true
		case tz:
			return kindTZPrefix, false
		}
		if strings.Contains(se.Err.Error(), "never fires") {
			return kindNeverFires, false
		}
	case "duration":
		d, err := time.ParseDuration(s.Duration)
		switch {
		case err != nil:
			return "", true
		case d <= 0:
			return kindNonPositiveDuration, false
		case d < time.Minute:
			return kindShortDuration, false
		case d%time.Second != 0:
			return kindSubSecondDuration, false
		}
	case "time_zone":
		if s.TimeZone == "Local" {
			return kindLocalZone, false
		}
		return kindUnknownZone, false
	case "description":
		return kindLongDescription, false
	case "":
		return kindDuplicate, false
	}
	return "", false
}

// verifyArgoLenient checks what Argo CD does with a window ferry refuses, where the kind says;
// all are the kinds of the window's problems.
func verifyArgoLenient(o *outcome, kind string, all []string, active bool, err error, at time.Time) {
	switch {
	case kind == kindTZPrefix && errors.Is(err, errArgoPanic):
		return // ferry refuses what crashes Argo CD's parser
	case err != nil:
		o.failf("%s: Argo CD's Active() fails (%v), want it to accept the window", kind, err)
		return
	}
	switch kind {
	case kindNeverFires:
		if !active {
			o.failf("%s: Argo CD's Active() = false at %s, want true (always active)", kind, at)
		}
	case kindNonPositiveDuration:
		if active && !slices.Contains(all, kindNeverFires) { // a window that never fires is always active
			o.failf("%s: Argo CD's Active() = true at %s, want false (never active)", kind, at)
		}
	}
}

// record adds an outcome's kinds to a tally.
func record(tally map[string]int, o outcome) {
	for k, n := range o.kinds {
		tally[k] += n
	}
	for k, n := range o.nextKinds {
		tally[k] += n
	}
}

// summary formats a tally, kinds in the allow-list order.
func summary(tally map[string]int) string {
	var parts []string
	for _, k := range deliberate {
		if n := tally[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(tally)) {
		if !slices.Contains(deliberate, k) {
			parts = append(parts, fmt.Sprintf("%s %d (NOT ALLOWED)", k, tally[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// goString formats a case as a Go literal, to paste into the table test.
func goString(c tcase) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcase{\n\tAt: mustTime(%q),\n\tApp: window.Target{Application: %q, Namespace: %q, Server: %q, Name: %q},\n\tWindows: []win{\n",
		c.At.UTC().Format(time.RFC3339), c.App.Application, c.App.Namespace, c.App.Server, c.App.Name)
	for _, w := range c.Windows {
		fmt.Fprintf(&b, "\t\t{Spec: window.Spec{Kind: %q, Schedule: %q, Duration: %q, TimeZone: %q, ManualSync: %v, Description: %q},\n",
			w.Spec.Kind, w.Spec.Schedule, w.Spec.Duration, w.Spec.TimeZone, w.Spec.ManualSync, w.Spec.Description)
		fmt.Fprintf(&b, "\t\t\tScope: window.Scope{Applications: %#v, Namespaces: %#v, Clusters: %#v, AndOperator: %v}},\n",
			w.Scope.Applications, w.Scope.Namespaces, w.Scope.Clusters, w.Scope.AndOperator)
	}
	b.WriteString("\t},\n}")
	return b.String()
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// failing reports whether c has an unexplained difference.
func failing(t *testing.T, c tcase) bool { return len(check(t, c).failures) > 0 }

// shrink removes windows, patterns and settings from a failing case while it keeps failing.
func shrink(t *testing.T, c tcase) tcase {
	for {
		var cands []tcase
		for i := range c.Windows {
			n := c
			n.Windows = slices.Delete(slices.Clone(c.Windows), i, i+1)
			cands = append(cands, n)
		}
		for i := range c.Windows {
			for _, f := range []func(*win){
				func(w *win) { w.Spec.Description = "" },
				func(w *win) { w.Spec.ManualSync = false },
				func(w *win) { w.Spec.TimeZone = "" },
				func(w *win) { w.Scope = allApps },
				func(w *win) { w.Scope.AndOperator = false },
			} {
				n := c
				n.Windows = slices.Clone(c.Windows)
				f(&n.Windows[i])
				if !equalWin(n.Windows[i], c.Windows[i]) {
					cands = append(cands, n)
				}
			}
		}
		i := slices.IndexFunc(cands, func(n tcase) bool { return failing(t, n) })
		if i < 0 {
			return c
		}
		c = cands[i]
	}
}

func equalWin(a, b win) bool {
	return a.Spec == b.Spec && a.Scope.AndOperator == b.Scope.AndOperator &&
		slices.Equal(a.Scope.Applications, b.Scope.Applications) && slices.Equal(a.Scope.Namespaces, b.Scope.Namespaces) &&
		slices.Equal(a.Scope.Clusters, b.Scope.Clusters)
}

// report fails t with c's unexplained differences and a minimal failing case.
func report(t *testing.T, c tcase, o outcome, context string) {
	t.Helper()
	m := shrink(t, c)
	mo := check(t, m)
	t.Errorf("%s: %d unexplained difference(s):\n  %s\nminimal failing case (%s):\n%s",
		context, len(o.failures), strings.Join(o.failures, "\n  "), strings.Join(mo.failures, "; "), goString(m))
}

// envInt reads an integer environment variable, or def.
func envInt(t *testing.T, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}
