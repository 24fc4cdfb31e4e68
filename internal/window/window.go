package window

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Kind says whether a window allows or denies syncs while it is active.
type Kind string

// The window kinds.
const (
	Allow Kind = "allow"
	Deny  Kind = "deny"
)

// Kinds returns the valid kinds as strings, for validators and documentation.
func Kinds() []string { return []string{string(Allow), string(Deny)} }

// MaxDescriptionLength is the longest description Parse accepts, in bytes (Argo CD's API server
// checks the same limit, also in bytes).
const MaxDescriptionLength = 255

// MinDuration is the shortest duration Parse accepts.
const MinDuration = time.Minute

// Spec is a window as users write it (Terraform deployment_window blocks, AppProject syncWindows).
type Spec struct {
	// Kind is "allow" or "deny".
	Kind string
	// Schedule is a 5-field cron expression of the window's starts, in TimeZone.
	Schedule string
	// Duration is a Go duration such as "2h" or "90m" ("d" is not a unit).
	Duration string
	// TimeZone is an IANA time zone name; "" means UTC.
	TimeZone string
	// ManualSync lets manual syncs through this window (deny) or outside it (allow).
	ManualSync bool
	// Description is free text, at most MaxDescriptionLength bytes.
	Description string
}

// Window is a parsed, valid window. The zero Window is ignored by [Evaluate].
type Window struct {
	spec  Spec
	index int
	label string
	kind  Kind
	dur   int64 // seconds, ≥ 60
	loc   *time.Location
	sched schedule
}

// Spec returns the spec the window was parsed from.
func (w Window) Spec() Spec { return w.spec }

// Index returns the window's position in the specs given to Parse.
func (w Window) Index() int { return w.index }

// Label returns the window's name in messages, label(Index()).
func (w Window) Label() string { return w.label }

// specParser is Argo CD's cron dialect (argoproj/argo-cd types.go): 5 fields, no descriptors.
var specParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Parse validates every spec and returns the windows, or an error that joins one [*SpecError]
// per problem (all problems at once, in spec order); every one wraps [ErrInvalidWindow].
//
// label(i) names window i in errors and reasons, e.g.
// func(i int) string { return fmt.Sprintf("deployment_window[%d]", i) }; nil means "window[i]".
func Parse(specs []Spec, label func(i int) string) ([]Window, error) {
	if label == nil {
		label = func(i int) string { return fmt.Sprintf("window[%d]", i) }
	}
	var errs []error
	ws := make([]Window, 0, len(specs))
	seen := make(map[[3]string]int, len(specs))
	for i, s := range specs {
		w, problems := parseOne(s)
		w.index, w.label, w.spec = i, label(i), s
		key := [3]string{s.Kind, s.Schedule, s.Duration}
		if first, dup := seen[key]; dup {
			problems = append(problems, fieldError{"", fmt.Errorf("window '%s':'%s':'%s' already exists, update or edit (same kind, schedule and duration as %s)",
				s.Kind, s.Schedule, s.Duration, label(first))})
		} else {
			seen[key] = i
		}
		for _, p := range problems {
			errs = append(errs, &SpecError{Index: i, Label: w.label, Field: p.field, Err: p.err})
		}
		ws = append(ws, w)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ws, nil
}

type fieldError struct {
	field string
	err   error
}

// parseOne checks every field of s independently.
func parseOne(s Spec) (Window, []fieldError) {
	var w Window
	var problems []fieldError
	bad := func(field string, err error) { problems = append(problems, fieldError{field, err}) }

	switch Kind(s.Kind) {
	case Allow, Deny:
		w.kind = Kind(s.Kind)
	default:
		bad("kind", fmt.Errorf("kind '%s' mismatch: can only be allow or deny", s.Kind))
	}

	if sc, err := parseSchedule(s.Schedule); err != nil {
		bad("schedule", err)
	} else {
		w.sched = sc
	}

	if d, err := parseDuration(s.Duration); err != nil {
		bad("duration", err)
	} else {
		w.dur = d
	}

	if loc, err := loadZone(s.TimeZone); err != nil {
		bad("time_zone", err)
	} else {
		w.loc = loc
	}

	if n := len(s.Description); n > MaxDescriptionLength {
		bad("description", fmt.Errorf("description must not exceed %d characters (got %d bytes)", MaxDescriptionLength, n))
	}
	return w, problems
}

func parseSchedule(s string) (schedule, error) {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return schedule{}, fmt.Errorf("cannot parse schedule '%s': a TZ= or CRON_TZ= prefix would shift the schedule a second time; set time_zone instead", s)
	}
	parsed, err := specParser.Parse(s)
	if err != nil {
		return schedule{}, fmt.Errorf("cannot parse schedule '%s': %w", s, err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return schedule{}, fmt.Errorf("cannot parse schedule '%s': not a cron expression", s)
	}
	sc := newSchedule(spec)
	if !sc.firesEver() {
		return schedule{}, fmt.Errorf("schedule '%s' never fires: no date matches its day-of-month and month fields (Argo CD would treat the window as always active)", s)
	}
	return sc, nil
}

func parseDuration(s string) (int64, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.ContainsAny(s, "dD") {
			return 0, fmt.Errorf("cannot parse duration '%s': %w (there is no \"d\" unit: write days as hours, e.g. \"24h\")", s, err)
		}
		return 0, fmt.Errorf("cannot parse duration '%s': %w", s, err)
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("duration '%s' must be positive (a window with no duration is never active)", s)
	case d < MinDuration:
		return 0, fmt.Errorf("duration '%s' must be at least %s", s, "1m")
	case d%time.Second != 0:
		return 0, fmt.Errorf("duration '%s' must be a whole number of seconds", s)
	}
	return int64(d / time.Second), nil
}

func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("time zone \"Local\" depends on the host: use an IANA name such as \"Europe/Berlin\"")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		if err.Error() == "unknown time zone "+name {
			return nil, fmt.Errorf("unknown time zone %q", name)
		}
		return nil, fmt.Errorf("unknown time zone %q: %w", name, err)
	}
	return loc, nil
}
