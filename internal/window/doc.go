// Package window evaluates deployment windows with Argo CD sync-window semantics: open or closed at a time and
// why, and when they next open and close.
//
// # Validation
//
// [Parse] is stricter than Argo CD, which validates only in its API server, and keeps Argo CD's messages where
// they exist. It reports every problem at once, each as a [*SpecError] naming the window (its label) and the field
// (kind, schedule, duration, time_zone, description), all wrapping [ErrInvalidWindow]:
//
//   - kind must be "allow" or "deny" (case-sensitive): "kind 'x' mismatch: can only be allow or deny".
//   - schedule is parsed exactly like Argo CD, with robfig/cron v3's
//     cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow): exactly 5 fields, no descriptors
//     (@daily), "cannot parse schedule '…': …". A TZ= or CRON_TZ= prefix is rejected: Argo CD would shift the
//     schedule a second time on top of timeZone. A schedule with no matching date (0 0 30 2 *) is rejected as
//     "never fires": Argo CD would treat it as always active.
//   - duration is a Go duration (time.ParseDuration; there is no "d" unit), at least 1m and a whole number of
//     seconds. Argo CD accepts ≤ 0 (a window that is never active).
//   - time_zone is an IANA name loaded with time.LoadLocation; "" means UTC. An unknown zone is an error (Argo CD
//     logs a warning and uses UTC); "Local" is rejected because it depends on the host.
//   - description is at most 255 bytes (as Argo CD's API server checks it).
//   - two windows with the same kind, schedule and duration strings are duplicates, whatever their time zones,
//     as in Argo CD's project validation: "window 'k':'s':'d' already exists, update or edit".
//
// # When a window is active
//
// A window starts at every instant whose wall-clock time in its zone matches the cron fields, with robfig/cron's
// day rule: when the day-of-month or the day-of-week field is * (or ?), both must match, otherwise either one is
// enough ("0 0 1 * 1" fires on the 1st and on Mondays). Daylight saving time:
//
//   - a matching wall time skipped by a forward jump starts the window at the first instant after the jump, once
//     (02:30 on 2026-03-08 in America/New_York starts at 03:00 EDT);
//   - a matching wall time that occurs twice (fall back) starts the window once, at its first occurrence (01:30 on
//     2026-11-01 in America/New_York starts at 01:30 EDT only).
//
// Formally, a wall time w starts the window at the first instant whose wall-clock time is w or later. The window
// is active at t when some start s has s ≤ t < s + duration, in real elapsed time: a 3h window starting at
// 00:00 on a spring-forward day ends at 04:00 local time. Starts are whole minutes (whole seconds for zones'
// pre-1900 local mean times) and ends are starts plus the duration, so results are exact.
//
// [Window.Active] reports whether one window is active at an instant.
//
// # Scope
//
// [Scope.Matches] decides whether a window applies to an application, with Argo CD's rules for a
// sync window's applications, namespaces, clusters and andOperator: an empty list takes no part, a
// window with every list empty applies to nothing, otherwise one list with a matching pattern is
// enough (with andOperator, every non-empty list needs one); a cluster pattern matches the
// destination server or name, never an empty one. Patterns are globs ([Glob]): *, ?, [abc],
// [!abc], [a-z], [!a-z] and literal characters, as in Argo CD; the other forms Argo CD's glob
// library accepts ({a,b}, escapes, mixed classes) and malformed patterns are refused, and
// [Scope.Validate] reports them.
//
// # Decision
//
// [Evaluate] applies Argo CD's CanSync to all windows given (ferry scopes windows per project; Argo CD first keeps
// the windows whose applications, namespaces or clusters match the application):
//
//  1. no windows: open ("no deployment windows");
//  2. an active deny window: closed, unless the sync is manual and every active deny window has manual_sync, in
//     which case it is open whatever the allow windows say;
//  3. an active allow window: open;
//  4. allow windows exist, none active: closed, unless the sync is manual and every allow window has
//     manual_sync;
//  5. only inactive deny windows: open.
//
// Argo CD's API server checks manual syncs (isManual true), auto-sync checks with isManual false, and the
// controller rechecks on every operation step with isManual = !initiatedBy.automated.
//
// # Next opening and closing
//
// When closed at t, NextOpen is the first instant after t at which Evaluate says open and NextClose the first
// instant after that at which it says closed; when open, the other way round. They are in t's location. Each is
// nil when not found within [HorizonYears] (5 years) or within a fixed amount of work; the Reason of a closed
// status then ends with "it does not open within 5 years" (or "before <time> (search limit reached)"). The search
// steps from one change of window state to the next, skipping changes that cannot change the decision, so a
// window such as "* * * * *" for 1h (an always-active deny) costs about one step per day, and anything
// pathological stops at the work limit within milliseconds.
//
// # Differences from Argo CD
//
// Argo CD (types.go active) reads "now" on the wall clock, with the zone's offset at that moment, and calls a
// window active when a matching wall time lies in (wall now − duration, wall now). Within one duration of a DST
// change this can differ from the rules above by up to the size of the change (1h; 30m for Australia/Lord_Howe):
// Argo CD measures the duration on the wall clock (a 3h window from 00:00 on a spring-forward day ends at 03:00
// local time, after 2 real hours), makes a window at a skipped wall time active from the jump until that wall
// time plus the duration, and makes a window at a repeated wall time active twice. It also counts the exact start
// instant as inactive (a window is active on (s, s+duration)); ferry counts it as active. Elsewhere the answers
// are the same: the test-only module internal/window/argodiff runs random windows, scopes and instants through
// this package and through Argo CD's own code and allows only these differences and the stricter validation
// above (docs/windows.md lists them).
package window
