package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzCompanions are windows added next to the fuzzed one, so that the fuzzer exercises the
// decision rules and not only a single window.
var fuzzCompanions = [][]Spec{
	nil,
	{{Kind: "allow", Schedule: "0 9 * * 1-5", Duration: "8h", TimeZone: "Europe/Berlin"}},
	{{Kind: "deny", Schedule: "30 2 * * *", Duration: "3h", TimeZone: "America/New_York", ManualSync: true}},
	{{Kind: "allow", Schedule: "*/10 * * * *", Duration: "5m", TimeZone: "Australia/Lord_Howe", ManualSync: true},
		{Kind: "deny", Schedule: "0 0 * * 0", Duration: "24h"}},
}

// Years the fuzzed instants are folded into.
var fuzzFrom, fuzzTo = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func FuzzParseEvaluate(f *testing.F) {
	f.Add("allow", "0 2 * * 1-5", "3h", "", false, int64(1772935200), uint8(0))
	f.Add("deny", "30 2 * * *", "90m", "America/New_York", true, int64(1772949600), uint8(1))
	f.Add("allow", "30 1 * * *", "1h", "America/New_York", false, int64(1793500000), uint8(2))
	f.Add("deny", "* * * * *", "1h", "Europe/Berlin", false, int64(1774746000), uint8(3))
	f.Add("allow", "0 0 29 2 *", "24h", "Australia/Lord_Howe", true, int64(4102444800), uint8(1))
	f.Add("deny", "*/2 * * * *", "1m", "Asia/Kolkata", false, int64(0), uint8(3))
	f.Add("allow", "TZ=UTC", "1d", "Europe/Berln", false, int64(-1), uint8(0))
	f.Add("deny", "0 0 30 2 *", "-1h", "Local", false, int64(1<<62), uint8(0))
	f.Add("allow", "@every 1h", "0", "", false, int64(-1<<62), uint8(0))
	f.Add("deny", "5-4 * * * *", "1m0.5s", "../etc/passwd", true, int64(1), uint8(2))
	f.Fuzz(func(t *testing.T, kind, schedule, duration, zone string, manualSync bool, sec int64, companion uint8) {
		specs := append([]Spec{{Kind: kind, Schedule: schedule, Duration: duration, TimeZone: zone, ManualSync: manualSync}},
			fuzzCompanions[int(companion)%len(fuzzCompanions)]...)
		ws, err := Parse(specs, label)
		if err != nil {
			if !errors.Is(err, ErrInvalidWindow) {
				t.Fatalf("Parse() error = %v, want it to wrap ErrInvalidWindow", err)
			}
			problems := err.(interface{ Unwrap() []error }).Unwrap()
			for _, e := range problems {
				var se *SpecError
				if !errors.As(e, &se) || !strings.HasPrefix(e.Error(), "deployment_window[") {
					t.Fatalf("Parse() error %q is not a *SpecError naming its window", e)
				}
			}
			if got, want := strings.Count(err.Error(), "\n")+1, len(problems); got != want {
				t.Fatalf("Parse() error has %d lines, want %d (one per problem): %q", got, want, err)
			}
			return
		}
		now := time.Unix(fuzzFrom+(sec%(fuzzTo-fuzzFrom)+(fuzzTo-fuzzFrom))%(fuzzTo-fuzzFrom), 0)
		manual := sec%2 == 0
		st := Evaluate(ws, now, manual)
		if st.Reason == "" {
			t.Errorf("Evaluate(%s).Reason is empty", now)
		}
		// check verifies that next is after now, that Evaluate says wantOpen at next and the
		// opposite one second before it, and that the change is reported consistently.
		check := func(name string, next *time.Time, wantOpen bool) {
			if next == nil {
				return
			}
			if !next.After(now) {
				t.Fatalf("Evaluate(%s).%s = %s, want after %s", now, name, next, now)
			}
			if got := Evaluate(ws, *next, manual).Open; got != wantOpen {
				t.Fatalf("Evaluate(%s).Open = %v, want %v (%s of Evaluate(%s))", next, got, wantOpen, name, now)
			}
			if got := Evaluate(ws, next.Add(-time.Second), manual).Open; got == wantOpen {
				t.Fatalf("Evaluate(%s).Open = %v, want %v (a second before %s of Evaluate(%s))", next.Add(-time.Second), got, !wantOpen, name, now)
			}
		}
		check("NextOpen", st.NextOpen, true)
		check("NextClose", st.NextClose, false)
		switch {
		case st.Open && st.NextOpen != nil && (st.NextClose == nil || !st.NextClose.Before(*st.NextOpen)):
			t.Fatalf("Evaluate(%s) open: NextClose %s, NextOpen %s, want NextClose before NextOpen", now, fmtTime(st.NextClose), fmtTime(st.NextOpen))
		case !st.Open && st.NextClose != nil && (st.NextOpen == nil || !st.NextOpen.Before(*st.NextClose)):
			t.Fatalf("Evaluate(%s) closed: NextOpen %s, NextClose %s, want NextOpen before NextClose", now, fmtTime(st.NextOpen), fmtTime(st.NextClose))
		case !st.Open && st.NextOpen == nil && !strings.Contains(st.Reason, "it does not open"):
			t.Fatalf("Evaluate(%s).Reason = %q, want it to say that it does not open", now, st.Reason)
		}
	})
}
