package window

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// at parses an RFC 3339 time or panics.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fmtTime renders an optional time for comparisons: RFC 3339 in UTC, "nil" when absent.
func fmtTime(t *time.Time) string {
	if t == nil {
		return "nil"
	}
	return t.UTC().Format(time.RFC3339)
}

// evalCase is one Evaluate expectation. Empty want fields are not checked, except that
// nextOpen and nextClose must be given ("nil" for none).
type evalCase struct {
	name      string
	specs     []Spec
	at        string
	manual    bool
	open      bool
	window    string
	reason    string // exact, when set
	nextOpen  string
	nextClose string
}

func runEvalCases(t *testing.T, tests []evalCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := mustParse(t, tt.specs...)
			got := Evaluate(ws, at(tt.at), tt.manual)
			if got.Open != tt.open {
				t.Errorf("Evaluate().Open = %v, want %v (reason: %s)", got.Open, tt.open, got.Reason)
			}
			if tt.window != "" && got.Window != tt.window {
				t.Errorf("Evaluate().Window = %q, want %q", got.Window, tt.window)
			}
			if tt.reason != "" && got.Reason != tt.reason {
				t.Errorf("Evaluate().Reason = %q, want %q", got.Reason, tt.reason)
			}
			if g := fmtTime(got.NextOpen); g != tt.nextOpen {
				t.Errorf("Evaluate().NextOpen = %s, want %s", g, tt.nextOpen)
			}
			if g := fmtTime(got.NextClose); g != tt.nextClose {
				t.Errorf("Evaluate().NextClose = %s, want %s", g, tt.nextClose)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	allow := func(sched, dur string) Spec { return Spec{Kind: "allow", Schedule: sched, Duration: dur} }
	deny := func(sched, dur string) Spec { return Spec{Kind: "deny", Schedule: sched, Duration: dur} }
	manual := func(s Spec) Spec { s.ManualSync = true; return s }
	described := func(s Spec, d string) Spec { s.Description = d; return s }
	business := allow("0 8 * * 1-5", "10h")
	freeze := described(deny("0 0 24 12 *", "192h"), "December freeze")

	runEvalCases(t, []evalCase{
		// Basics. 2026-01-05 is a Monday.
		{name: "no windows", at: "2026-01-05T10:00:00Z", open: true, reason: "no deployment windows", nextOpen: "nil", nextClose: "nil"},
		{name: "allow active", specs: []Spec{allow("0 9 * * *", "8h")}, at: "2026-01-05T10:00:00Z", open: true,
			window: "deployment_window[0]", reason: "allow window deployment_window[0] is active until 2026-01-05T17:00:00Z",
			nextClose: "2026-01-05T17:00:00Z", nextOpen: "2026-01-06T09:00:00Z"},
		{name: "allow inactive", specs: []Spec{allow("0 9 * * *", "8h")}, at: "2026-01-05T08:00:00Z", open: false,
			window: "deployment_window[0]", reason: "no allow window is active; the next to start is allow window deployment_window[0] at 2026-01-05T09:00:00Z",
			nextOpen: "2026-01-05T09:00:00Z", nextClose: "2026-01-05T17:00:00Z"},
		{name: "allow opens at its start", specs: []Spec{allow("0 9 * * *", "8h")}, at: "2026-01-05T09:00:00Z", open: true,
			nextClose: "2026-01-05T17:00:00Z", nextOpen: "2026-01-06T09:00:00Z"},
		{name: "allow closes at start plus duration", specs: []Spec{allow("0 9 * * *", "8h")}, at: "2026-01-05T17:00:00Z", open: false,
			nextOpen: "2026-01-06T09:00:00Z", nextClose: "2026-01-06T17:00:00Z"},
		{name: "allow one second before its end", specs: []Spec{allow("0 9 * * *", "8h")}, at: "2026-01-05T16:59:59.999Z", open: true,
			nextClose: "2026-01-05T17:00:00Z", nextOpen: "2026-01-06T09:00:00Z"},
		{name: "deny active", specs: []Spec{deny("0 12 * * *", "1h")}, at: "2026-01-05T12:30:00Z", open: false,
			window: "deployment_window[0]", reason: "deny window deployment_window[0] is active until 2026-01-05T13:00:00Z",
			nextOpen: "2026-01-05T13:00:00Z", nextClose: "2026-01-06T12:00:00Z"},
		{name: "only inactive denies", specs: []Spec{deny("0 12 * * *", "1h")}, at: "2026-01-05T11:00:00Z", open: true,
			window: "", reason: "no deny window is active", nextClose: "2026-01-05T12:00:00Z", nextOpen: "2026-01-05T13:00:00Z"},
		{name: "December freeze", specs: []Spec{business, freeze}, at: "2026-12-28T12:00:00Z", open: false,
			window: "deployment_window[1]", reason: `deny window deployment_window[1] ("December freeze") is active until 2027-01-01T00:00:00Z`,
			nextOpen: "2027-01-01T08:00:00Z", nextClose: "2027-01-01T18:00:00Z"}, // 2027-01-01 is a Friday

		// Deny beats allow; allow windows with none active close.
		{name: "deny beats allow", specs: []Spec{allow("0 0 * * *", "24h"), deny("0 12 * * *", "1h")}, at: "2026-01-05T12:30:00Z", open: false,
			window: "deployment_window[1]", nextOpen: "2026-01-05T13:00:00Z", nextClose: "2026-01-06T12:00:00Z"},
		{name: "allow and inactive deny", specs: []Spec{allow("0 0 * * *", "24h"), deny("0 12 * * *", "1h")}, at: "2026-01-05T11:00:00Z", open: true,
			window: "deployment_window[0]", nextClose: "2026-01-05T12:00:00Z", nextOpen: "2026-01-05T13:00:00Z"},
		{name: "no allow active among several", specs: []Spec{allow("0 9 * * 1", "1h"), allow("0 15 * * 3", "1h"), deny("0 0 * * 0", "1h")}, at: "2026-01-05T11:00:00Z", open: false,
			window: "deployment_window[1]", reason: "no allow window is active; the next to start is allow window deployment_window[1] at 2026-01-07T15:00:00Z",
			nextOpen: "2026-01-07T15:00:00Z", nextClose: "2026-01-07T16:00:00Z"},
		{name: "allow starts inside a deny", specs: []Spec{allow("0 9 * * *", "2h"), deny("0 8 * * *", "2h")}, at: "2026-01-05T07:00:00Z", open: false,
			nextOpen: "2026-01-05T10:00:00Z", nextClose: "2026-01-05T11:00:00Z"},

		// manual_sync.
		{name: "manual through manual_sync deny", specs: []Spec{manual(deny("0 12 * * *", "1h"))}, at: "2026-01-05T12:30:00Z", manual: true, open: true,
			window: "deployment_window[0]", reason: "deny window deployment_window[0] is active until 2026-01-05T13:00:00Z, but every active deny window has manual_sync and the sync is manual",
			nextOpen: "nil", nextClose: "nil"},
		{name: "automated blocked by manual_sync deny", specs: []Spec{manual(deny("0 12 * * *", "1h"))}, at: "2026-01-05T12:30:00Z", open: false,
			nextOpen: "2026-01-05T13:00:00Z", nextClose: "2026-01-06T12:00:00Z"},
		{name: "manual blocked when one active deny lacks manual_sync", specs: []Spec{manual(deny("0 12 * * *", "2h")), deny("30 12 * * *", "1h")}, at: "2026-01-05T12:45:00Z", manual: true, open: false,
			window: "deployment_window[1]", reason: "deny window deployment_window[1] is active until 2026-01-05T13:30:00Z and does not have manual_sync",
			nextOpen: "2026-01-05T13:30:00Z", nextClose: "2026-01-06T12:30:00Z"},
		{name: "manual outside manual_sync allow", specs: []Spec{manual(allow("0 9 * * *", "1h"))}, at: "2026-01-05T11:00:00Z", manual: true, open: true,
			window: "", reason: "no allow window is active, but every allow window has manual_sync and the sync is manual", nextOpen: "nil", nextClose: "nil"},
		{name: "automated outside manual_sync allow", specs: []Spec{manual(allow("0 9 * * *", "1h"))}, at: "2026-01-05T11:00:00Z", open: false,
			nextOpen: "2026-01-06T09:00:00Z", nextClose: "2026-01-06T10:00:00Z"},
		{name: "manual outside allows when one lacks manual_sync", specs: []Spec{manual(allow("0 9 * * *", "1h")), allow("0 18 * * *", "1h")}, at: "2026-01-05T11:00:00Z", manual: true, open: false,
			window: "deployment_window[1]", reason: "no allow window is active and allow window deployment_window[1] does not have manual_sync",
			nextOpen: "2026-01-05T18:00:00Z", nextClose: "2026-01-05T19:00:00Z"},
		{name: "manual through manual_sync deny outside allows", specs: []Spec{allow("0 9 * * *", "1h"), manual(deny("0 12 * * *", "1h"))}, at: "2026-01-05T12:30:00Z", manual: true, open: true,
			window: "deployment_window[1]", nextClose: "2026-01-05T13:00:00Z", nextOpen: "2026-01-06T09:00:00Z"},
		{name: "manual: manual_sync deny opens the allow-closed time", specs: []Spec{allow("0 9 * * *", "1h"), manual(deny("0 12 * * *", "1h"))}, at: "2026-01-05T11:00:00Z", manual: true, open: false,
			nextOpen: "2026-01-05T12:00:00Z", nextClose: "2026-01-05T13:00:00Z"},
		{name: "manual: blocking deny closes a manual_sync allow gap", specs: []Spec{manual(allow("0 9 * * *", "1h")), manual(deny("0 12 * * *", "1h")), deny("0 20 * * *", "1h")}, at: "2026-01-05T11:00:00Z", manual: true, open: true,
			nextClose: "2026-01-05T20:00:00Z", nextOpen: "2026-01-05T21:00:00Z"},

		// Spanning midnight, month and year ends.
		{name: "22:00 for 4h after midnight", specs: []Spec{allow("0 22 * * *", "4h")}, at: "2026-01-06T01:30:00Z", open: true,
			reason: "allow window deployment_window[0] is active until 2026-01-06T02:00:00Z", nextClose: "2026-01-06T02:00:00Z", nextOpen: "2026-01-06T22:00:00Z"},
		{name: "22:00 for 4h closed", specs: []Spec{allow("0 22 * * *", "4h")}, at: "2026-01-06T02:00:00Z", open: false,
			nextOpen: "2026-01-06T22:00:00Z", nextClose: "2026-01-07T02:00:00Z"},
		{name: "across the year end", specs: []Spec{allow("0 22 31 12 *", "4h")}, at: "2027-01-01T01:00:00Z", open: true,
			nextClose: "2027-01-01T02:00:00Z", nextOpen: "2027-12-31T22:00:00Z"},
		{name: "before the year end", specs: []Spec{allow("0 22 31 12 *", "4h")}, at: "2026-06-01T00:00:00Z", open: false,
			nextOpen: "2026-12-31T22:00:00Z", nextClose: "2027-01-01T02:00:00Z"},
		{name: "across a month end", specs: []Spec{allow("0 23 28-31 * *", "2h")}, at: "2026-03-01T00:30:00Z", open: true,
			nextClose: "2026-03-01T01:00:00Z", nextOpen: "2026-03-28T23:00:00Z"},
		{name: "last days of February", specs: []Spec{allow("0 23 28-31 * *", "2h")}, at: "2026-02-27T12:00:00Z", open: false,
			nextOpen: "2026-02-28T23:00:00Z", nextClose: "2026-03-01T01:00:00Z"},

		// Overlaps.
		{name: "deny inside allow", specs: []Spec{allow("0 8 * * *", "10h"), deny("0 12 * * *", "2h")}, at: "2026-01-05T09:00:00Z", open: true,
			nextClose: "2026-01-05T12:00:00Z", nextOpen: "2026-01-05T14:00:00Z"},
		{name: "chained allows", specs: []Spec{allow("0 8 * * *", "4h"), allow("0 11 * * *", "4h")}, at: "2026-01-05T09:00:00Z", open: true,
			window: "deployment_window[0]", reason: "allow window deployment_window[0] is active until 2026-01-05T12:00:00Z",
			nextClose: "2026-01-05T15:00:00Z", nextOpen: "2026-01-06T08:00:00Z"},
		{name: "chained allows, both active", specs: []Spec{allow("0 8 * * *", "4h"), allow("0 11 * * *", "4h")}, at: "2026-01-05T11:30:00Z", open: true,
			window: "deployment_window[1]", reason: "allow window deployment_window[1] is active until 2026-01-05T15:00:00Z",
			nextClose: "2026-01-05T15:00:00Z", nextOpen: "2026-01-06T08:00:00Z"},
		{name: "touching allows", specs: []Spec{allow("0 8 * * *", "4h"), allow("0 12 * * *", "4h")}, at: "2026-01-05T09:00:00Z", open: true,
			nextClose: "2026-01-05T16:00:00Z", nextOpen: "2026-01-06T08:00:00Z"},
		{name: "overlapping denies", specs: []Spec{deny("0 8 * * *", "4h"), deny("0 11 * * *", "4h"), allow("0 0 * * *", "24h")}, at: "2026-01-05T09:00:00Z", open: false,
			window: "deployment_window[0]", nextOpen: "2026-01-05T15:00:00Z", nextClose: "2026-01-06T08:00:00Z"},
		{name: "overlapping denies, both active", specs: []Spec{deny("0 8 * * *", "4h"), deny("0 11 * * *", "4h"), allow("0 0 * * *", "24h")}, at: "2026-01-05T11:30:00Z", open: false,
			window: "deployment_window[1]", reason: "deny window deployment_window[1] is active until 2026-01-05T15:00:00Z",
			nextOpen: "2026-01-05T15:00:00Z", nextClose: "2026-01-06T08:00:00Z"},
		{name: "self-overlapping allow never closes", specs: []Spec{allow("0 */2 * * *", "3h")}, at: "2026-01-05T09:00:00Z", open: true,
			reason: "allow window deployment_window[0] is active and does not end within 5 years", nextClose: "nil", nextOpen: "nil"},
		{name: "allow with gaps", specs: []Spec{allow("0 */4 * * *", "3h")}, at: "2026-01-05T09:00:00Z", open: true,
			nextClose: "2026-01-05T11:00:00Z", nextOpen: "2026-01-05T12:00:00Z"},
		{name: "every minute of business hours", specs: []Spec{allow("* 9-16 * * 1-5", "1m")}, at: "2026-01-09T10:00:30Z", open: true,
			nextClose: "2026-01-09T17:00:00Z", nextOpen: "2026-01-12T09:00:00Z"},

		// Weekday ranges and the day rule. 2026-01-10 is a Saturday; 2026-02-01 a Sunday.
		{name: "weekdays from Saturday", specs: []Spec{allow("0 2 * * 1-5", "3h")}, at: "2026-01-10T03:00:00Z", open: false,
			nextOpen: "2026-01-12T02:00:00Z", nextClose: "2026-01-12T05:00:00Z"},
		{name: "weekdays on Friday", specs: []Spec{allow("0 2 * * 1-5", "3h")}, at: "2026-01-09T03:00:00Z", open: true,
			nextClose: "2026-01-09T05:00:00Z", nextOpen: "2026-01-12T02:00:00Z"},
		{name: "weekday names", specs: []Spec{allow("0 2 * * mon-fri", "3h")}, at: "2026-01-10T03:00:00Z", open: false,
			nextOpen: "2026-01-12T02:00:00Z", nextClose: "2026-01-12T05:00:00Z"},
		{name: "dom or dow: the 1st", specs: []Spec{allow("0 0 1 * 1", "1h")}, at: "2026-02-01T00:30:00Z", open: true,
			nextClose: "2026-02-01T01:00:00Z", nextOpen: "2026-02-02T00:00:00Z"},
		{name: "dom or dow: a Monday", specs: []Spec{allow("0 0 1 * 1", "1h")}, at: "2026-02-02T00:30:00Z", open: true,
			nextClose: "2026-02-02T01:00:00Z", nextOpen: "2026-02-09T00:00:00Z"},
		{name: "dom or dow: neither", specs: []Spec{allow("0 0 1 * 1", "1h")}, at: "2026-02-03T00:30:00Z", open: false,
			nextOpen: "2026-02-09T00:00:00Z", nextClose: "2026-02-09T01:00:00Z"},
		{name: "dom and dow star: Mondays in February", specs: []Spec{allow("0 0 * 2 1", "1h")}, at: "2026-01-20T00:00:00Z", open: false,
			nextOpen: "2026-02-02T00:00:00Z", nextClose: "2026-02-02T01:00:00Z"},
		{name: "step dom is not a star", specs: []Spec{allow("0 0 */2 * 1", "1h")}, at: "2026-02-04T00:30:00Z", open: false,
			nextOpen: "2026-02-05T00:00:00Z", nextClose: "2026-02-05T01:00:00Z"},
		{name: "leap day", specs: []Spec{allow("0 0 29 2 *", "24h")}, at: "2026-03-01T00:00:00Z", open: false,
			nextOpen: "2028-02-29T00:00:00Z", nextClose: "2028-03-01T00:00:00Z"},

		// Time zones without DST changes.
		{name: "Asia/Kolkata", specs: []Spec{{Kind: "allow", Schedule: "0 9 * * *", Duration: "1h", TimeZone: "Asia/Kolkata"}}, at: "2026-01-05T03:00:00Z", open: false,
			nextOpen: "2026-01-05T03:30:00Z", nextClose: "2026-01-05T04:30:00Z"},
		{name: "result in the caller's zone", specs: []Spec{allow("0 9 * * *", "1h")}, at: "2026-01-05T12:00:00+03:00", open: true,
			nextClose: "2026-01-05T10:00:00Z", nextOpen: "2026-01-06T09:00:00Z"},
	})
}

func TestEvaluateDST(t *testing.T) {
	in := func(zone, kind, sched, dur string) Spec {
		return Spec{Kind: kind, Schedule: sched, Duration: dur, TimeZone: zone}
	}
	const ny, berlin, lordHowe = "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"
	runEvalCases(t, []evalCase{
		// America/New_York, 2026-03-08: 02:00 EST (07:00Z) jumps to 03:00 EDT.
		{name: "NY skipped 02:30 starts at 03:00 EDT", specs: []Spec{in(ny, "allow", "30 2 * * *", "1h")}, at: "2026-03-08T06:59:00Z", open: false,
			nextOpen: "2026-03-08T07:00:00Z", nextClose: "2026-03-08T08:00:00Z"},
		{name: "NY skipped 02:30 then back to normal", specs: []Spec{in(ny, "allow", "30 2 * * *", "1h")}, at: "2026-03-08T08:00:00Z", open: false,
			nextOpen: "2026-03-09T06:30:00Z", nextClose: "2026-03-09T07:30:00Z"},
		{name: "NY day before spring forward", specs: []Spec{in(ny, "allow", "30 2 * * *", "1h")}, at: "2026-03-07T00:00:00Z", open: false,
			nextOpen: "2026-03-07T07:30:00Z", nextClose: "2026-03-07T08:30:00Z"},
		{name: "NY four skipped starts start once", specs: []Spec{in(ny, "allow", "0,15,30,45 2 * * *", "10m")}, at: "2026-03-08T06:00:00Z", open: false,
			nextOpen: "2026-03-08T07:00:00Z", nextClose: "2026-03-08T07:10:00Z"},
		{name: "NY four skipped starts, next is the next day", specs: []Spec{in(ny, "allow", "0,15,30,45 2 * * *", "10m")}, at: "2026-03-08T07:10:00Z", open: false,
			nextOpen: "2026-03-09T06:00:00Z", nextClose: "2026-03-09T06:10:00Z"},
		{name: "NY 3h window across spring forward lasts 3 real hours", specs: []Spec{in(ny, "allow", "0 0 * * *", "3h")}, at: "2026-03-08T05:00:00Z", open: true,
			nextClose: "2026-03-08T08:00:00Z", nextOpen: "2026-03-09T04:00:00Z"},
		{name: "NY deny across spring forward", specs: []Spec{in(ny, "deny", "0 1 * * *", "2h")}, at: "2026-03-08T05:30:00Z", open: true,
			nextClose: "2026-03-08T06:00:00Z", nextOpen: "2026-03-08T08:00:00Z"},

		// America/New_York, 2026-11-01: 02:00 EDT (06:00Z) falls back to 01:00 EST.
		{name: "NY repeated 01:30 starts at its first occurrence", specs: []Spec{in(ny, "allow", "30 1 * * *", "1h")}, at: "2026-11-01T05:00:00Z", open: false,
			nextOpen: "2026-11-01T05:30:00Z", nextClose: "2026-11-01T06:30:00Z"},
		{name: "NY repeated 01:30 does not start again", specs: []Spec{in(ny, "allow", "30 1 * * *", "1h")}, at: "2026-11-01T06:45:00Z", open: false,
			nextOpen: "2026-11-02T06:30:00Z", nextClose: "2026-11-02T07:30:00Z"},
		{name: "NY 3h window across fall back lasts 3 real hours", specs: []Spec{in(ny, "allow", "0 0 * * *", "3h")}, at: "2026-11-01T04:00:00Z", open: true,
			nextClose: "2026-11-01T07:00:00Z", nextOpen: "2026-11-02T05:00:00Z"},
		{name: "NY every-15-minutes during the repeated hour", specs: []Spec{in(ny, "allow", "0,15,30,45 1 * * *", "5m")}, at: "2026-11-01T06:01:00Z", open: false,
			nextOpen: "2026-11-02T06:00:00Z", nextClose: "2026-11-02T06:05:00Z"},

		// Europe/Berlin: 2026-03-29 02:00 CET (01:00Z) jumps to 03:00 CEST; 2026-10-25 03:00 CEST (01:00Z) falls back to 02:00 CET.
		{name: "Berlin skipped 02:30 starts at 03:00 CEST", specs: []Spec{in(berlin, "allow", "30 2 * * *", "1h")}, at: "2026-03-29T00:00:00Z", open: false,
			nextOpen: "2026-03-29T01:00:00Z", nextClose: "2026-03-29T02:00:00Z"},
		{name: "Berlin repeated 02:30 starts once", specs: []Spec{in(berlin, "allow", "30 2 * * *", "1h")}, at: "2026-10-25T00:00:00Z", open: false,
			nextOpen: "2026-10-25T00:30:00Z", nextClose: "2026-10-25T01:30:00Z"},
		{name: "Berlin repeated 02:30, second pass", specs: []Spec{in(berlin, "allow", "30 2 * * *", "1h")}, at: "2026-10-25T01:45:00Z", open: false,
			nextOpen: "2026-10-26T01:30:00Z", nextClose: "2026-10-26T02:30:00Z"},
		{name: "Berlin weekday deny on a DST Sunday", specs: []Spec{in(berlin, "deny", "0 22 * * 0", "3h"), in(berlin, "allow", "0 0 * * *", "24h")}, at: "2026-03-29T12:00:00Z", open: true,
			nextClose: "2026-03-29T20:00:00Z", nextOpen: "2026-03-29T23:00:00Z"},
		{name: "Berlin daily allow across fall back", specs: []Spec{in(berlin, "allow", "0 9 * * *", "8h")}, at: "2026-10-24T12:00:00Z", open: true,
			nextClose: "2026-10-24T15:00:00Z", nextOpen: "2026-10-25T08:00:00Z"},

		// Australia/Lord_Howe: 30-minute changes. 2026-04-05 02:00 (+11, 2026-04-04T15:00Z) falls back to 01:30;
		// 2026-10-04 02:00 (+10:30, 2026-10-03T15:30Z) jumps to 02:30.
		{name: "Lord Howe repeated 01:45 starts once", specs: []Spec{in(lordHowe, "allow", "45 1 * * *", "30m")}, at: "2026-04-04T14:00:00Z", open: false,
			nextOpen: "2026-04-04T14:45:00Z", nextClose: "2026-04-04T15:15:00Z"},
		{name: "Lord Howe repeated 01:45, second pass", specs: []Spec{in(lordHowe, "allow", "45 1 * * *", "30m")}, at: "2026-04-04T15:15:00Z", open: false,
			nextOpen: "2026-04-05T15:15:00Z", nextClose: "2026-04-05T15:45:00Z"},
		// Pacific/Apia skipped 2011-12-30 entirely (−10 to +14 at 2011-12-30T10:00Z).
		{name: "Apia skipped day starts at the jump", specs: []Spec{in("Pacific/Apia", "allow", "0 12 * * *", "1h")}, at: "2011-12-29T23:30:00Z", open: false,
			nextOpen: "2011-12-30T10:00:00Z", nextClose: "2011-12-30T11:00:00Z"},
		{name: "Apia after the skipped day", specs: []Spec{in("Pacific/Apia", "allow", "0 12 * * *", "1h")}, at: "2011-12-30T11:00:00Z", open: false,
			nextOpen: "2011-12-30T22:00:00Z", nextClose: "2011-12-30T23:00:00Z"},
		{name: "Lord Howe skipped 02:15 starts at 02:30", specs: []Spec{in(lordHowe, "allow", "15 2 * * *", "1h")}, at: "2026-10-03T15:00:00Z", open: false,
			nextOpen: "2026-10-03T15:30:00Z", nextClose: "2026-10-03T16:30:00Z"},
	})
}

func TestEvaluateNeverOpens(t *testing.T) {
	tests := []struct {
		name   string
		specs  []Spec
		reason string
	}{
		{"deny always active, allow only inside it",
			[]Spec{{Kind: "deny", Schedule: "0 0 * * *", Duration: "24h"}, {Kind: "allow", Schedule: "0 12 * * *", Duration: "1h"}},
			"deny window deployment_window[0] is active and does not end within 5 years; it does not open within 5 years"},
		{"frozen environment",
			[]Spec{{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Description: "frozen"}},
			`deny window deployment_window[0] ("frozen") is active and does not end within 5 years; it does not open within 5 years`},
		{"frozen environment with manual_sync, automated sync",
			[]Spec{{Kind: "deny", Schedule: "* * * * *", Duration: "48h", ManualSync: true}, {Kind: "allow", Schedule: "0 9 * * 1-5", Duration: "8h"}},
			"deny window deployment_window[0] is active and does not end within 5 years; it does not open within 5 years"},
		{"allow never outside a weekday deny",
			[]Spec{{Kind: "deny", Schedule: "0 0 * * 1-5", Duration: "24h"}, {Kind: "allow", Schedule: "0 10 * * 2", Duration: "2h"}},
			"deny window deployment_window[0] is active until 2026-01-10T00:00:00Z; it does not open within 5 years"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := mustParse(t, tt.specs...)
			got := Evaluate(ws, at("2026-01-07T11:00:00Z"), false)
			if got.Open || got.NextOpen != nil || got.NextClose != nil {
				t.Errorf("Evaluate() = open %v, NextOpen %s, NextClose %s, want closed, nil, nil", got.Open, fmtTime(got.NextOpen), fmtTime(got.NextClose))
			}
			if got.Reason != tt.reason {
				t.Errorf("Evaluate().Reason = %q, want %q", got.Reason, tt.reason)
			}
		})
	}
}

// timedEvaluate evaluates an automated sync three times and returns the status and the shortest
// time taken, so that a busy machine does not fail the test.
// NOTE: the work a pathological window may cost is bounded by a step budget (the reasons above
// end in "search limit reached"); BenchmarkEvaluate measures the time, tests never do.

func TestEvaluateSearchLimit(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
	}{
		// The union is always active but every run lasts a minute: no step skips more than a minute.
		{"alternating one-minute denies", []Spec{
			{Kind: "deny", Schedule: "*/2 * * * *", Duration: "1m"},
			{Kind: "deny", Schedule: "1-59/2 * * * *", Duration: "1m"},
		}},
		{"alternating one-minute denies and an allow", []Spec{
			{Kind: "deny", Schedule: "*/2 * * * *", Duration: "1m"},
			{Kind: "deny", Schedule: "1-59/2 * * * *", Duration: "1m"},
			{Kind: "allow", Schedule: "* * * * *", Duration: "1m"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := mustParse(t, tt.specs...)
			got := Evaluate(ws, at("2026-01-07T11:00:30Z"), false)
			if got.Open || got.NextOpen != nil {
				t.Errorf("Evaluate() = open %v, NextOpen %s, want closed, nil", got.Open, fmtTime(got.NextOpen))
			}
			if !strings.HasSuffix(got.Reason, "(search limit reached)") {
				t.Errorf("Evaluate().Reason = %q, want it to end with %q", got.Reason, "(search limit reached)")
			}
		})
	}
}

func TestEvaluateIgnoresZeroWindows(t *testing.T) {
	got := Evaluate(make([]Window, 3), at("2026-01-07T11:00:00Z"), false)
	if want := (Status{Open: true, Reason: "no deployment windows"}); got.Open != want.Open || got.Reason != want.Reason || got.NextOpen != nil || got.NextClose != nil {
		t.Errorf("Evaluate() = %+v, want %+v", got, want)
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	ws := mustParse(t,
		Spec{Kind: "allow", Schedule: "0 8 * * 1-5", Duration: "10h", TimeZone: "Europe/Berlin"},
		Spec{Kind: "deny", Schedule: "0 0 24 12 *", Duration: "192h"},
	)
	want := Evaluate(ws, at("2026-03-27T12:00:00Z"), false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got := Evaluate(ws, at("2026-03-27T12:00:00Z"), false)
			if got.Open != want.Open || fmtTime(got.NextOpen) != fmtTime(want.NextOpen) || fmtTime(got.NextClose) != fmtTime(want.NextClose) || got.Reason != want.Reason {
				t.Errorf("Evaluate() = %+v, want %+v", got, want)
			}
		})
	}
	wg.Wait()
}

func TestEvaluateExtremeTimes(t *testing.T) {
	ws := mustParse(t,
		Spec{Kind: "allow", Schedule: "0 9 * * 1-5", Duration: "8h", TimeZone: "America/New_York"},
		Spec{Kind: "deny", Schedule: "0 0 1 1 *", Duration: "2562047h"}, // about 292 years, the longest Go duration
	)
	tests := []struct {
		name string
		at   time.Time
	}{
		{"zero time", time.Time{}},
		{"Unix epoch", time.Unix(0, 0)},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"year -500", time.Date(-500, 6, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(ws, tt.at, false)
			for _, next := range []*time.Time{got.NextOpen, got.NextClose} {
				if next != nil && !next.After(tt.at) {
					t.Errorf("Evaluate(%s) next = %s, want after %s", tt.at, next, tt.at)
				}
			}
			if got.Reason == "" {
				t.Errorf("Evaluate(%s).Reason = %q, want a reason", tt.at, got.Reason)
			}
		})
	}
}

// TestPeriodAtLeapYearEnd covers Go's ZoneBounds ending the last period of a leap year a day
// early after a zone's table (at 00:00 UTC on 31 December, not on 1 January): the period must
// still contain the instant and reach the new year, not shrink to one second (which cost a lookup per second of that day, 100 ms per Evaluate).
func TestPeriodAtLeapYearEnd(t *testing.T) {
	for _, name := range []string{"Europe/Berlin", "America/New_York"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, y := range []int{2040, 2080} {
			x := time.Date(y, 12, 31, 12, 0, 0, 0, loc).Unix()
			p := periodAt(loc, x)
			_, off := time.Unix(x, 0).In(loc).Zone()
			if want := time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC).Unix(); p.start > x || p.end != want || p.off != int64(off) {
				t.Errorf("periodAt(%s, %d-12-31T12:00) = [%s, %s) offset %d, want it to contain the instant, end at %s, offset %d", name, y,
					time.Unix(p.start, 0).In(loc), time.Unix(p.end, 0).In(loc), p.off, time.Unix(want, 0).In(loc), off)
			}
		}
	}
	ws := mustParse(t, Spec{Kind: "allow", Schedule: "59 9-17 ? * *", Duration: "23h", TimeZone: "Europe/Berlin"})
	start := time.Now()
	st := Evaluate(ws, time.Date(2079, 4, 25, 20, 14, 2, 0, time.UTC), false)
	if !st.Open || st.NextClose != nil {
		t.Errorf("Evaluate() = %+v, want open with no NextClose", st)
	}
	t.Logf("Evaluate() across 2080-12-31 took %s", time.Since(start))
}

func TestWindowActive(t *testing.T) {
	w := mustParse(t, Spec{Kind: "allow", Schedule: "0 2 * * *", Duration: "1h", TimeZone: "Europe/Berlin"})[0]
	tests := []struct {
		at   string
		want bool
	}{
		{"2026-06-15T00:00:00Z", true}, // 02:00 CEST: the start instant is active
		{"2026-06-15T00:59:59Z", true},
		{"2026-06-15T01:00:00Z", false}, // the end is not
		{"2026-06-14T23:59:59Z", false},
		{"2026-03-29T01:30:00Z", true}, // 02:00 is skipped: the window starts at 03:00 CEST, 01:00Z
	}
	for _, tt := range tests {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := w.Active(at); got != tt.want {
			t.Errorf("Active(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if (Window{}).Active(time.Now()) {
		t.Errorf("Window{}.Active() = true, want false")
	}
}
