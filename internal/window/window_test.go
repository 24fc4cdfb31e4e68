package window

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// label is the Terraform provider's window label.
func label(i int) string { return fmt.Sprintf("deployment_window[%d]", i) }

// mustParse parses specs or fails the test.
func mustParse(t testing.TB, specs ...Spec) []Window {
	t.Helper()
	ws, err := Parse(specs, label)
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	return ws
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"weekdays", Spec{Kind: "allow", Schedule: "0 2 * * 1-5", Duration: "3h"}},
		{"names and steps", Spec{Kind: "deny", Schedule: "*/15 9-17 * jan-mar mon-fri", Duration: "90m", TimeZone: "Europe/Berlin"}},
		{"question marks", Spec{Kind: "allow", Schedule: "0 0 ? * 1", Duration: "1h30m"}},
		{"leap day", Spec{Kind: "deny", Schedule: "0 0 29 2 *", Duration: "24h"}},
		{"31st", Spec{Kind: "deny", Schedule: "0 0 31 * *", Duration: "1m"}},
		{"explicit UTC", Spec{Kind: "allow", Schedule: "0 0 * * *", Duration: "1h", TimeZone: "UTC"}},
		{"half-hour zone", Spec{Kind: "allow", Schedule: "30 4 * * *", Duration: "1h", TimeZone: "Asia/Kolkata"}},
		{"fractional minutes", Spec{Kind: "allow", Schedule: "0 0 * * *", Duration: "1.5m"}},
		{"long duration", Spec{Kind: "deny", Schedule: "0 0 1 1 *", Duration: "100000h"}},
		{"255-byte description", Spec{Kind: "deny", Schedule: "0 0 * * *", Duration: "1h", Description: strings.Repeat("x", 255), ManualSync: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, err := Parse([]Spec{tt.spec}, label)
			if err != nil {
				t.Fatalf("Parse() error = %v, want nil", err)
			}
			if got, want := len(ws), 1; got != want {
				t.Fatalf("len(Parse()) = %d, want %d", got, want)
			}
			w := ws[0]
			if got, want := w.Spec(), tt.spec; got != want {
				t.Errorf("Spec() = %+v, want %+v", got, want)
			}
			if got, want := w.Label(), "deployment_window[0]"; got != want {
				t.Errorf("Label() = %q, want %q", got, want)
			}
			if got, want := w.Index(), 0; got != want {
				t.Errorf("Index() = %d, want %d", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	ok := Spec{Kind: "allow", Schedule: "0 2 * * *", Duration: "1h"}
	with := func(f func(*Spec)) Spec { s := ok; f(&s); return s }
	tests := []struct {
		name  string
		specs []Spec
		field string
		want  string
	}{
		{"bad cron", []Spec{with(func(s *Spec) { s.Schedule = "0 25 * * *" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule '0 25 * * *': end of range (25) above maximum (23): 25"},
		{"6-field cron", []Spec{with(func(s *Spec) { s.Schedule = "0 0 2 * * *" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule '0 0 2 * * *': expected exactly 5 fields, found 6: [0 0 2 * * *]"},
		{"4-field cron", []Spec{with(func(s *Spec) { s.Schedule = "0 2 * *" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule '0 2 * *': expected exactly 5 fields, found 4: [0 2 * *]"},
		{"descriptor", []Spec{with(func(s *Spec) { s.Schedule = "@daily" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule '@daily': parser does not accept descriptors: @daily"},
		{"empty schedule", []Spec{with(func(s *Spec) { s.Schedule = "" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule '': empty spec string"},
		{"sunday as 7", []Spec{with(func(s *Spec) { s.Schedule = "0 2 * * 7" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule '0 2 * * 7': end of range (7) above maximum (6): 7"},
		{"TZ prefix", []Spec{with(func(s *Spec) { s.Schedule = "TZ=Europe/Berlin 0 2 * * *" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule 'TZ=Europe/Berlin 0 2 * * *': a TZ= or CRON_TZ= prefix would shift the schedule a second time; set time_zone instead"},
		{"CRON_TZ prefix without fields", []Spec{with(func(s *Spec) { s.Schedule = "CRON_TZ=UTC" })}, "schedule",
			"deployment_window[0].schedule: cannot parse schedule 'CRON_TZ=UTC': a TZ= or CRON_TZ= prefix would shift the schedule a second time; set time_zone instead"},
		{"never fires", []Spec{with(func(s *Spec) { s.Schedule = "0 0 30 2 *" })}, "schedule",
			"deployment_window[0].schedule: schedule '0 0 30 2 *' never fires: no date matches its day-of-month and month fields (Argo CD would treat the window as always active)"},
		{"never fires on the 31st of short months", []Spec{with(func(s *Spec) { s.Schedule = "0 0 31 4,6,9,11 *" })}, "schedule",
			"deployment_window[0].schedule: schedule '0 0 31 4,6,9,11 *' never fires: no date matches its day-of-month and month fields (Argo CD would treat the window as always active)"},
		{"unknown time zone", []Spec{with(func(s *Spec) { s.TimeZone = "Europe/Berln" })}, "time_zone",
			`deployment_window[0].time_zone: unknown time zone "Europe/Berln"`},
		{"Local time zone", []Spec{with(func(s *Spec) { s.TimeZone = "Local" })}, "time_zone",
			`deployment_window[0].time_zone: time zone "Local" depends on the host: use an IANA name such as "Europe/Berlin"`},
		{"negative duration", []Spec{with(func(s *Spec) { s.Duration = "-1h" })}, "duration",
			"deployment_window[0].duration: duration '-1h' must be positive (a window with no duration is never active)"},
		{"zero duration", []Spec{with(func(s *Spec) { s.Duration = "0s" })}, "duration",
			"deployment_window[0].duration: duration '0s' must be positive (a window with no duration is never active)"},
		{"day unit", []Spec{with(func(s *Spec) { s.Duration = "1d" })}, "duration",
			`deployment_window[0].duration: cannot parse duration '1d': time: unknown unit "d" in duration "1d" (there is no "d" unit: write days as hours, e.g. "24h")`},
		{"no unit", []Spec{with(func(s *Spec) { s.Duration = "90" })}, "duration",
			`deployment_window[0].duration: cannot parse duration '90': time: missing unit in duration "90"`},
		{"empty duration", []Spec{with(func(s *Spec) { s.Duration = "" })}, "duration",
			`deployment_window[0].duration: cannot parse duration '': time: invalid duration ""`},
		{"below a minute", []Spec{with(func(s *Spec) { s.Duration = "30s" })}, "duration",
			"deployment_window[0].duration: duration '30s' must be at least 1m"},
		{"fraction of a second", []Spec{with(func(s *Spec) { s.Duration = "1m0.5s" })}, "duration",
			"deployment_window[0].duration: duration '1m0.5s' must be a whole number of seconds"},
		{"line break in input", []Spec{with(func(s *Spec) { s.Schedule = "0 2 * *\n* *" })}, "schedule",
			`deployment_window[0].schedule: cannot parse schedule '0 2 * *\n* *': expected exactly 5 fields, found 6: [0 2 * * * *]`},
		{"bad kind", []Spec{with(func(s *Spec) { s.Kind = "Allow" })}, "kind",
			"deployment_window[0].kind: kind 'Allow' mismatch: can only be allow or deny"},
		{"empty kind", []Spec{with(func(s *Spec) { s.Kind = "" })}, "kind",
			"deployment_window[0].kind: kind '' mismatch: can only be allow or deny"},
		{"too-long description", []Spec{with(func(s *Spec) { s.Description = strings.Repeat("é", 128) })}, "description",
			"deployment_window[0].description: description must not exceed 255 characters (got 256 bytes)"},
		{"duplicate window", []Spec{ok, with(func(s *Spec) { s.TimeZone = "Europe/Berlin"; s.Description = "again" })}, "",
			"deployment_window[1]: window 'allow':'0 2 * * *':'1h' already exists, update or edit (same kind, schedule and duration as deployment_window[0])"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, err := Parse(tt.specs, label)
			if err == nil {
				t.Fatalf("Parse() = %d windows, nil error; want error %q", len(ws), tt.want)
			}
			if ws != nil {
				t.Errorf("Parse() windows = %v, want nil", ws)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse() error = %q, want %q", got, tt.want)
			}
			if !errors.Is(err, ErrInvalidWindow) {
				t.Errorf("errors.Is(Parse() error, ErrInvalidWindow) = false, want true")
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("errors.As(Parse() error, *SpecError) = false, want true")
			}
			if got, want := se.Field, tt.field; got != want {
				t.Errorf("SpecError.Field = %q, want %q", got, want)
			}
			if got, want := se.Label, label(se.Index); got != want {
				t.Errorf("SpecError.Label = %q, want %q", got, want)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	specs := []Spec{
		{Kind: "allow", Schedule: "0 9 * * 1-5", Duration: "8h", TimeZone: "Europe/Berlin"},
		{Kind: "block", Schedule: "@weekly", Duration: "2d", TimeZone: "Mars/Olympus", Description: strings.Repeat("d", 300)},
		{Kind: "deny", Schedule: "0 0 24 12 *", Duration: "192h"},
		{Kind: "allow", Schedule: "0 9 * * 1-5", Duration: "8h", TimeZone: "America/New_York"},
	}
	_, err := Parse(specs, label)
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *SpecError
		if !errors.As(e, &se) {
			t.Fatalf("errors.As(%v, *SpecError) = false, want true", e)
		}
		got = append(got, fmt.Sprintf("%d %s", se.Index, se.Field))
	}
	want := []string{"1 kind", "1 schedule", "1 duration", "1 time_zone", "1 description", "3 "}
	if !slices.Equal(got, want) {
		t.Errorf("Parse() problems = %q, want %q", got, want)
	}
	if got, want := strings.Count(err.Error(), "\n")+1, len(want); got != want {
		t.Errorf("Parse() error has %d lines, want %d (one per problem)", got, want)
	}
}

func TestParseDefaultLabel(t *testing.T) {
	_, err := Parse([]Spec{{Kind: "allow", Schedule: "0 0 * * *", Duration: "1h"}, {Kind: "deny", Schedule: "0 0 * * *", Duration: "0"}}, nil)
	if got, want := err.Error(), "window[1].duration: duration '0' must be positive (a window with no duration is never active)"; got != want {
		t.Errorf("Parse() error = %q, want %q", got, want)
	}
}

func TestParseEmpty(t *testing.T) {
	ws, err := Parse(nil, label)
	if err != nil || len(ws) != 0 {
		t.Errorf("Parse(nil) = %v, %v, want no windows and nil error", ws, err)
	}
}

func TestKinds(t *testing.T) {
	if got, want := Kinds(), []string{"allow", "deny"}; !slices.Equal(got, want) {
		t.Errorf("Kinds() = %q, want %q", got, want)
	}
}

// TestScheduleDayRule checks robfig/cron's day rule on the parsed bit fields against robfig's own
// Next for UTC schedules (no DST), over two years of days.
func TestScheduleDayRule(t *testing.T) {
	tests := []string{
		"0 0 1 * 1",     // 1st or Monday
		"0 0 * * 1",     // Mondays
		"0 0 1 * *",     // 1st
		"0 0 */2 * 1",   // odd days or Monday: */2 clears robfig's star bit
		"0 0 * 2 1",     // Mondays in February
		"0 0 ? * 5",     // ? is a star
		"0 0 13 * 5",    // 13th or Friday
		"0 0 29 2 *",    // leap days
		"0 0 1-7 * */1", // */1 keeps the star bit: first seven days only
	}
	for _, sched := range tests {
		t.Run(sched, func(t *testing.T) {
			parsed, err := specParser.Parse(sched)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := parseSchedule(sched)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			want := map[int64]bool{}
			for n := parsed.Next(start.Add(-time.Second)); n.Before(start.AddDate(2, 0, 0)); n = parsed.Next(n) {
				want[n.Unix()/secPerDay] = true
			}
			for day := start.Unix() / secPerDay; day < start.AddDate(2, 0, 0).Unix()/secPerDay; day++ {
				_, m, d := civil(day)
				if got := sc.dayMatches(m, d, weekday(day)); got != want[day] {
					t.Errorf("dayMatches(%s) = %v, want %v", time.Unix(day*secPerDay, 0).UTC().Format("Mon 2006-01-02"), got, want[day])
				}
			}
		})
	}
}

func TestCivil(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	} {
		day := floorDiv(tm.Unix(), secPerDay)
		y, m, d := civil(day)
		if got, want := fmt.Sprintf("%04d-%02d-%02d %d", y, m, d, weekday(day)), fmt.Sprintf("%s %d", tm.Format("2006-01-02"), tm.Weekday()); got != want {
			t.Errorf("civil(%d) = %s, want %s", day, got, want)
		}
		if got, want := daysIn(y, m), time.Date(int(y), time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day(); got != want {
			t.Errorf("daysIn(%d, %d) = %d, want %d", y, m, got, want)
		}
	}
}
