package argodiff

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// allApps is the scope of a window that applies to every application.
var allApps = window.Scope{Applications: []string{"*"}}

// one returns a case of one window, applying to every application, at instant t.
func one(t string, spec window.Spec) tcase {
	return tcase{At: mustTime(t), App: window.Target{Application: "app-1", Namespace: "prod", Server: "https://kubernetes.default.svc"},
		Windows: []win{{Spec: spec, Scope: allApps}}}
}

func TestEdgeCases(t *testing.T) {
	app := window.Target{Application: "app-1", Namespace: "team-a", Server: "https://kubernetes.default.svc", Name: "in-cluster"}
	deny := window.Spec{Kind: "deny", Schedule: "0 0 * * *", Duration: "24h"} // always active
	scoped := func(s window.Scope, a window.Target) tcase {
		return tcase{At: mustTime("2026-06-15T12:00:00Z"), App: a, Windows: []win{{Spec: deny, Scope: s}}}
	}
	with := func(a window.Target, f func(*window.Target)) window.Target { f(&a); return a }
	tests := []struct {
		name string
		c    tcase
		want []string // the deliberate differences expected; nil: the engines agree
	}{
		{"no windows", tcase{At: mustTime("2026-06-15T12:00:00Z"), App: app}, nil},
		{"empty lists match nothing", scoped(window.Scope{}, app), nil},
		{"empty lists with andOperator", scoped(window.Scope{AndOperator: true}, app), nil},
		{"star", scoped(window.Scope{Applications: []string{"*"}}, app), nil},
		{"app-? matches app-1", scoped(window.Scope{Applications: []string{"app-?"}}, app), nil},
		{"app-? misses app-10", scoped(window.Scope{Applications: []string{"app-?"}}, with(app, func(a *window.Target) { a.Application = "app-10" })), nil},
		{"[ab]* matches billing", scoped(window.Scope{Applications: []string{"[ab]*"}}, with(app, func(a *window.Target) { a.Application = "billing" })), nil},
		{"[!a]* misses app-1", scoped(window.Scope{Applications: []string{"[!a]*"}}, app), nil},
		{"namespace glob", scoped(window.Scope{Namespaces: []string{"team-?"}}, app), nil},
		{"cluster by name", scoped(window.Scope{Clusters: []string{"in-*"}}, app), nil},
		{"star crosses slashes", scoped(window.Scope{Clusters: []string{"*.svc"}}, app), nil},
		{"cluster star needs a destination", scoped(window.Scope{Clusters: []string{"*"}}, window.Target{Application: "app-1"}), nil},
		{"namespace star matches no namespace", scoped(window.Scope{Namespaces: []string{"*"}}, window.Target{Application: "app-1"}), nil},
		{"or: the cluster matches", scoped(window.Scope{Applications: []string{"shop"}, Clusters: []string{"in-cluster"}}, app), nil},
		{"and: the namespace misses", scoped(window.Scope{Applications: []string{"app-*"}, Namespaces: []string{"prod"}, AndOperator: true}, app), nil},
		{"and: all match", scoped(window.Scope{Applications: []string{"app-*"}, Namespaces: []string{"team-a"}, Clusters: []string{"https://*"}, AndOperator: true}, app), nil},
		{"alternatives are refused", scoped(window.Scope{Applications: []string{"{app,shop}-*"}}, app), []string{kindUnsupportedGlob}},
		{"malformed glob", scoped(window.Scope{Applications: []string{"app-["}}, app), []string{kindInvalidGlob}},

		{"midnight wrap", one("2026-06-16T01:00:00Z", window.Spec{Kind: "allow", Schedule: "0 23 * * *", Duration: "3h"}), nil},
		{"duration longer than the period", one("2026-06-16T01:00:00Z", window.Spec{Kind: "deny", Schedule: "0 * * * *", Duration: "90m"}), nil},
		{"48h window every day", one("2026-06-16T01:00:00Z", window.Spec{Kind: "allow", Schedule: "0 0 * * *", Duration: "48h", TimeZone: "Europe/Berlin"}), nil},
		{"day-of-month or weekday", one("2026-06-15T00:30:00Z", window.Spec{Kind: "allow", Schedule: "0 0 1 * 1", Duration: "1h"}), nil},
		{"start instant", one("2026-06-15T02:00:00Z", window.Spec{Kind: "allow", Schedule: "0 2 * * *", Duration: "1h"}), []string{kindStartInstant}},
		{"end instant", one("2026-06-15T03:00:00Z", window.Spec{Kind: "allow", Schedule: "0 2 * * *", Duration: "1h"}), nil},
		{"Berlin: start skipped by spring forward", one("2026-03-29T01:40:00Z", window.Spec{Kind: "allow", Schedule: "30 2 * * *", Duration: "1h", TimeZone: "Europe/Berlin"}), []string{kindDST}},
		{"Berlin: window across spring forward", one("2026-03-29T01:30:00Z", window.Spec{Kind: "deny", Schedule: "0 0 * * *", Duration: "3h", TimeZone: "Europe/Berlin"}), []string{kindDST}},
		{"Berlin: ordinary day", one("2026-03-30T01:30:00Z", window.Spec{Kind: "deny", Schedule: "0 0 * * *", Duration: "3h", TimeZone: "Europe/Berlin"}), nil},
		{"New York: repeated 01:30", one("2026-11-01T06:45:00Z", window.Spec{Kind: "deny", Schedule: "30 1 * * *", Duration: "1h", TimeZone: "America/New_York"}), []string{kindDST}},
		{"New York: first 01:30", one("2026-11-01T05:45:00Z", window.Spec{Kind: "deny", Schedule: "30 1 * * *", Duration: "1h", TimeZone: "America/New_York"}), nil},
		{"Lord Howe: 30-minute change", one("2026-04-04T15:20:00Z", window.Spec{Kind: "allow", Schedule: "0 1 * * *", Duration: "1h", TimeZone: "Australia/Lord_Howe"}), []string{kindDST}},

		{"overlapping allow and deny", tcase{At: mustTime("2026-06-15T12:30:00Z"), App: app, Windows: []win{
			{Spec: window.Spec{Kind: "allow", Schedule: "0 0 * * *", Duration: "24h"}, Scope: allApps},
			{Spec: window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h"}, Scope: allApps}}}, nil},
		{"manualSync on the deny window", tcase{At: mustTime("2026-06-15T12:30:00Z"), App: app, Windows: []win{
			{Spec: window.Spec{Kind: "allow", Schedule: "0 0 * * *", Duration: "1h"}, Scope: allApps},
			{Spec: window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h", ManualSync: true}, Scope: allApps}}}, nil},
		{"manualSync on one of two deny windows", tcase{At: mustTime("2026-06-15T12:30:00Z"), App: app, Windows: []win{
			{Spec: window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "2h", ManualSync: true}, Scope: allApps},
			{Spec: window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h"}, Scope: allApps}}}, nil},
		{"manualSync on the inactive allow window", one("2026-06-15T12:30:00Z", window.Spec{Kind: "allow", Schedule: "0 2 * * *", Duration: "1h", ManualSync: true}), nil},
		{"window of another application", tcase{At: mustTime("2026-06-15T12:30:00Z"), App: app, Windows: []win{
			{Spec: window.Spec{Kind: "deny", Schedule: "0 0 * * *", Duration: "24h"}, Scope: window.Scope{Applications: []string{"shop"}}},
			{Spec: window.Spec{Kind: "allow", Schedule: "0 2 * * *", Duration: "1h"}, Scope: allApps}}}, nil},

		{"never fires", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "0 0 30 2 *", Duration: "1h"}), []string{kindNeverFires}},
		{"TZ= prefix", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "TZ=Europe/Berlin 0 2 * * *", Duration: "1h"}), []string{kindTZPrefix}},
		{"zero duration", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "0s"}), []string{kindNonPositiveDuration}},
		{"negative duration", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "-1h"}), []string{kindNonPositiveDuration}},
		{"30s duration", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "30s"}), []string{kindShortDuration}},
		{"sub-second duration", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "1m0.5s"}), []string{kindSubSecondDuration}},
		{"unknown time zone", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h", TimeZone: "Europe/Berln"}), []string{kindUnknownZone}},
		{"Local time zone", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h", TimeZone: "Local"}), []string{kindLocalZone}},
		{"kind in capitals", one("2026-06-15T12:30:00Z", window.Spec{Kind: "Deny", Schedule: "0 12 * * *", Duration: "1h"}), []string{kindInvalidKind}},
		{"256-byte description", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h", Description: fmt.Sprintf("%0256d", 0)}), []string{kindLongDescription}},
		{"duplicate", tcase{At: mustTime("2026-06-15T12:30:00Z"), App: app, Windows: []win{
			{Spec: window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h"}, Scope: allApps},
			{Spec: window.Spec{Kind: "deny", Schedule: "0 12 * * *", Duration: "1h", TimeZone: "Europe/Berlin"}, Scope: allApps}}}, []string{kindDuplicate}},
		{"both refuse a descriptor", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "@daily", Duration: "1h"}), nil},
		{"both refuse a day unit", one("2026-06-15T12:30:00Z", window.Spec{Kind: "deny", Schedule: "0 0 * * *", Duration: "1d"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := check(t, tt.c)
			if len(o.failures) > 0 {
				report(t, tt.c, o, "check()")
			}
			if got := slices.Sorted(maps.Keys(o.kinds)); !slices.Equal(got, slices.Sorted(slices.Values(tt.want))) {
				t.Errorf("check() differences = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRandom compares the engines on FERRY_WINDOW_DIFF_CASES random cases (default 20000) drawn
// from FERRY_WINDOW_DIFF_SEED (default 1).
func TestRandom(t *testing.T) {
	seed := uint64(envInt(t, "FERRY_WINDOW_DIFF_SEED", 1))
	n := envInt(t, "FERRY_WINDOW_DIFF_CASES", 20000)
	t.Logf("seed %d (FERRY_WINDOW_DIFF_SEED), %d cases (FERRY_WINDOW_DIFF_CASES)", seed, n)
	start := time.Now()
	g := newGen(seed)
	tally := map[string]int{}
	compared, failed := 0, 0
	for i := range n {
		c := g.tcase()
		o := check(t, c)
		record(tally, o)
		compared += o.compared
		if len(o.failures) > 0 {
			report(t, c, o, fmt.Sprintf("seed %d, case %d", seed, i))
			if failed++; failed == 3 {
				t.Fatalf("stopping after %d failing cases (seed %d)", failed, seed)
			}
		}
	}
	t.Logf("%d cases, %d decisions compared in %s; deliberate differences: %s", n, compared, time.Since(start).Round(time.Millisecond), summary(tally))
}

// The fuzzed instants are folded into [instantFrom, instantTo).
var fuzzFrom, fuzzSpan = instantFrom.Unix(), instantTo.Unix() - instantFrom.Unix()

// FuzzArgoDiff compares the engines on one fuzzed window (kind, schedule, duration, time zone,
// manualSync, an application pattern) and fuzzed application name and instant, next to companion
// windows drawn from seed.
func FuzzArgoDiff(f *testing.F) {
	f.Add(uint64(1), int64(1772935200), "allow", "0 2 * * 1-5", "3h", "Europe/Berlin", false, "app-?", "app-1")
	f.Fuzz(func(t *testing.T, seed uint64, sec int64, kind, schedule, duration, zone string, manualSync bool, pattern, name string) {
		g := newGen(seed)
		c := g.tcase()
		if len(c.Windows) > 2 {
			c.Windows = c.Windows[:2]
		}
		c.App.Application = name
		c.Windows = append([]win{{
			Spec:  window.Spec{Kind: kind, Schedule: schedule, Duration: duration, TimeZone: zone, ManualSync: manualSync},
			Scope: window.Scope{Applications: []string{pattern}},
		}}, c.Windows...)
		c.At = time.Unix(fuzzFrom+((sec-fuzzFrom)%fuzzSpan+fuzzSpan)%fuzzSpan, 0).UTC() // sec itself when in range
		if o := check(t, c); len(o.failures) > 0 {
			report(t, c, o, "FuzzArgoDiff")
		}
	})
}
