package window

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file checks Evaluate against a brute-force evaluator that shares no code with the package:
// it walks real minutes in UTC, converts each to wall-clock time with the time package, fires a
// window when a wall minute matching its fields is reached for the first time (so a minute skipped
// by a forward jump fires at the jump, and a repeated minute never fires twice), and applies
// Argo CD's CanSync rules minute by minute.

// propZones are the zones of the property test.
var propZones = []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"}

// propBases are scan bases, two days before each 2026 DST change of propZones, plus two ordinary
// weeks (one across the year end).
var propBases = []string{
	"2026-03-06T00:00:00Z", // New York spring forward, 03-08
	"2026-03-27T00:00:00Z", // Berlin spring forward, 03-29
	"2026-04-03T00:00:00Z", // Lord Howe falls back 30m, 04-05
	"2026-10-02T00:00:00Z", // Lord Howe springs forward 30m, 10-04
	"2026-10-23T00:00:00Z", // Berlin falls back, 10-25
	"2026-10-30T00:00:00Z", // New York falls back, 11-01
	"2026-06-15T00:00:00Z",
	"2026-12-28T00:00:00Z",
}

const (
	scanBefore = 49 * 60      // minutes scanned before a base: every window started before that has ended
	scanAfter  = 10 * 24 * 60 // minutes scanned after a base
	scanLen    = scanBefore + scanAfter
)

// field is a cron field as a set of values; star marks a field written as *.
type field struct {
	star bool
	set  [60]bool
}

func (f *field) has(v int) bool { return f.star || f.set[v] }

func (f field) String() string {
	if f.star {
		return "*"
	}
	var parts []string
	for v, ok := range f.set {
		if ok {
			parts = append(parts, strconv.Itoa(v))
		}
	}
	return strings.Join(parts, ",")
}

// propWindow is a random window in the brute-force model.
type propWindow struct {
	allow                         bool
	minute, hour, dom, month, dow field
	minutes                       int // duration
	zone                          int // index into propZones
	manualSync                    bool
}

func (w propWindow) spec() Spec {
	kind := "deny"
	if w.allow {
		kind = "allow"
	}
	return Spec{
		Kind:       kind,
		Schedule:   fmt.Sprintf("%s %s %s %s %s", w.minute, w.hour, w.dom, w.month, w.dow),
		Duration:   fmt.Sprintf("%dm", w.minutes),
		TimeZone:   propZones[w.zone],
		ManualSync: w.manualSync,
	}
}

// wallTime is a wall-clock minute broken down.
type wallTime struct{ minute, hour, dom, month, dow int }

func newWallTime(unixMinute int64) wallTime {
	t := time.Unix(unixMinute*60, 0).UTC()
	return wallTime{t.Minute(), t.Hour(), t.Day(), int(t.Month()), int(t.Weekday())}
}

// matches reports whether the wall-clock minute t matches the fields, with the cron day rule:
// either day field being * means both must match.
func (w *propWindow) matches(t wallTime) bool {
	if !w.minute.has(t.minute) || !w.hour.has(t.hour) || !w.month.has(t.month) {
		return false
	}
	d, wd := w.dom.has(t.dom), w.dow.has(t.dow)
	if w.dom.star || w.dow.star {
		return d && wd
	}
	return d || wd
}

// randField draws a field: * with probability star, else 1-3 values from pool.
func randField(r *rand.Rand, star float64, pool []int) field {
	if r.Float64() < star {
		return field{star: true}
	}
	var f field
	for range 1 + r.IntN(3) {
		f.set[pool[r.IntN(len(pool))]] = true
	}
	return f
}

func randWindow(r *rand.Rand) propWindow {
	hours := []int{0, 1, 2, 3, 4, 9, 12, 17, 22, 23}
	durations := []int{1, 5, 10, 30, 45, 60, 90, 120, 180, 360, 720, 1440, 2880}
	w := propWindow{
		allow:      r.IntN(2) == 0,
		minute:     randField(r, 0.05, []int{0, 1, 15, 29, 30, 45, 59}),
		hour:       randField(r, 0.1, hours),
		dom:        randField(r, 0.7, []int{1, 3, 4, 5, 8, 25, 29, 30, 31}),
		month:      randField(r, 0.9, []int{3, 4, 6, 10, 11, 12}),
		dow:        randField(r, 0.7, []int{0, 1, 2, 3, 4, 5, 6}),
		minutes:    durations[r.IntN(len(durations))],
		zone:       r.IntN(len(propZones)),
		manualSync: r.IntN(3) == 0,
	}
	if r.IntN(3) == 0 {
		w.minutes = 1 + r.IntN(2880)
	}
	return w
}

// wallScan holds the wall-clock minute (Unix minutes of the wall time read as UTC) of every real
// minute of a scan, in one zone, and its breakdown.
type wallScan struct {
	walls []int64
	times []wallTime
}

func newWallScan(base time.Time, zone string) wallScan {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		panic(err)
	}
	s := wallScan{walls: make([]int64, scanLen), times: make([]wallTime, scanLen)}
	for k := range scanLen {
		u := base.Add(time.Duration(k-scanBefore) * time.Minute).In(loc)
		s.walls[k] = time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), 0, 0, time.UTC).Unix() / 60
		s.times[k] = newWallTime(s.walls[k])
	}
	return s
}

// fires returns, per real minute of the scan, whether w starts then: when a wall minute not
// reached before (later than every earlier wall minute) matches, counting the minutes a forward
// jump skips.
func (w *propWindow) fires(s wallScan) []bool {
	out := make([]bool, scanLen)
	seen := s.walls[0] - 1
	for k, wall := range s.walls {
		if wall > seen {
			out[k] = w.matches(s.times[k])
			for m := seen + 1; m < wall && !out[k]; m++ { // skipped by a forward jump
				out[k] = w.matches(newWallTime(m))
			}
			seen = wall
		}
	}
	return out
}

// bruteOpen returns, per real minute of the scan, whether a sync may start, by Argo CD's CanSync.
func bruteOpen(ws []propWindow, walls map[string]wallScan, manual bool) []bool {
	active := make([][]bool, len(ws))
	for i := range ws {
		w := &ws[i]
		fires := w.fires(walls[propZones[w.zone]])
		active[i] = make([]bool, scanLen)
		last := -1 << 30
		for k := range scanLen {
			if fires[k] {
				last = k
			}
			active[i][k] = k < last+w.minutes
		}
	}
	open := make([]bool, scanLen)
	for k := range scanLen {
		var deny, denyAllManual, allow, inactiveAllow, inactiveAllowAllManual = false, true, false, false, true
		for i, w := range ws {
			switch {
			case active[i][k] && w.allow:
				allow = true
			case active[i][k]:
				deny = true
				denyAllManual = denyAllManual && w.manualSync
			case w.allow:
				inactiveAllow = true
				inactiveAllowAllManual = inactiveAllowAllManual && w.manualSync
			}
		}
		switch {
		case deny:
			open[k] = manual && denyAllManual
		case allow:
			open[k] = true
		case inactiveAllow:
			open[k] = manual && inactiveAllowAllManual
		default:
			open[k] = true
		}
	}
	return open
}

func TestEvaluateMatchesBruteForce(t *testing.T) {
	cases := 720
	if testing.Short() || raceEnabled {
		cases = 240
	}
	r := rand.New(rand.NewPCG(2026, 3))
	walls := map[string]map[string]wallScan{}
	for _, b := range propBases {
		walls[b] = map[string]wallScan{}
		for _, z := range propZones {
			walls[b][z] = newWallScan(at(b), z)
		}
	}
	var compared, evaluations, nils, opens int
	for n := range cases {
		base := propBases[n%len(propBases)]
		var ws []propWindow
		var specs []Spec
		for len(ws) == 0 {
			ws = make([]propWindow, 1+r.IntN(4))
			specs = specs[:0]
			for i := range ws {
				ws[i] = randWindow(r)
				specs = append(specs, ws[i].spec())
			}
			if _, err := Parse(specs, label); err != nil {
				ws = nil // a duplicate or a schedule that never fires
			}
		}
		manual := r.IntN(2) == 0
		k := scanBefore + r.IntN(5*24*60) // at ≥ base: every window started before the scan has ended
		now := at(base).Add(time.Duration(k-scanBefore)*time.Minute + time.Duration(r.IntN(60))*time.Second)

		t.Run(fmt.Sprintf("%d", n), func(t *testing.T) {
			open := bruteOpen(ws, walls[base], manual)
			parsed := mustParse(t, specs...)
			minute := func(j int) time.Time { return at(base).Add(time.Duration(j-scanBefore) * time.Minute) }
			// first returns the first scanned minute after from whose state is want.
			first := func(from int, want bool) (int, bool) {
				for j := from + 1; j < scanLen; j++ {
					if open[j] == want {
						return j, true
					}
				}
				return 0, false
			}
			// evaluate checks Evaluate at now (in scanned minute k) and returns the minute of its
			// first change, false when there is none in the scan.
			evaluate := func(now time.Time, k int) (int, bool) {
				got := Evaluate(parsed, now, manual)
				desc := fmt.Sprintf("windows %+v, at %s, manual %v", specs, now.Format(time.RFC3339), manual)
				if got.Open != open[k] {
					t.Fatalf("Evaluate().Open = %v, want %v; %s; reason %s", got.Open, open[k], desc, got.Reason)
				}
				check := func(name string, got *time.Time, j int, found bool) {
					switch {
					case found && got == nil:
						t.Fatalf("Evaluate().%s = nil, want %s; %s", name, minute(j).Format(time.RFC3339), desc)
					case found && !got.Equal(minute(j)):
						t.Fatalf("Evaluate().%s = %s, want %s; %s", name, fmtTime(got), minute(j).Format(time.RFC3339), desc)
					case !found && got != nil && got.Before(minute(scanLen)):
						t.Fatalf("Evaluate().%s = %s, want none before %s; %s", name, fmtTime(got), minute(scanLen).Format(time.RFC3339), desc)
					}
				}
				firstNext, ok1 := first(k, !open[k])
				secondNext, ok2 := first(firstNext, open[k])
				ok2 = ok1 && ok2
				if open[k] {
					check("NextClose", got.NextClose, firstNext, ok1)
					check("NextOpen", got.NextOpen, secondNext, ok2)
				} else {
					check("NextOpen", got.NextOpen, firstNext, ok1)
					check("NextClose", got.NextClose, secondNext, ok2)
				}
				if got.NextOpen == nil || got.NextClose == nil {
					nils++
				}
				evaluations++
				return firstNext, ok1
			}
			if open[k] {
				opens++
			}
			// Evaluate at a random instant, then at every change it reports, to the end of the scan.
			for j, ok := evaluate(now, k); ok; j, ok = evaluate(minute(j), j) {
				compared++
			}
		})
	}
	t.Logf("%d cases (%d open at the random instant), %d evaluations, %d changes compared minute-exact, %d evaluations with a nil next time", cases, opens, evaluations, compared, nils)
}
