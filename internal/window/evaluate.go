package window

import (
	"fmt"
	"math"
	"time"
)

// HorizonYears is how far ahead Evaluate looks for the next opening and closing.
const HorizonYears = 5

// searchBudget caps the steps (window starts and days examined) that Evaluate spends on
// NextOpen, NextClose and the end times in Reason, so that pathological windows (a start every
// minute with overlapping durations) cost a few milliseconds, not a walk over five years.
const searchBudget = 100_000

// Status is the answer of [Evaluate].
type Status struct {
	// Open says whether a sync may start at the evaluated time.
	Open bool
	// Reason is one sentence: which window decided and why, e.g. `deny window deployment_window[1]
	// ("December freeze") is active until 2027-01-01T00:00:00Z`. When the status is closed and
	// NextOpen is nil it ends with "; it does not open within 5 years" (or "; it does not open
	// before <time> (search limit reached)").
	Reason string
	// Window is the label of the deciding window, "" when no single window decided.
	Window string
	// NextOpen is the first instant after the evaluated time at which a sync may start: when
	// closed, the end of the current closed stretch; when open, the end of the closed stretch
	// that begins at NextClose. Nil when not found within HorizonYears (or the search limit).
	NextOpen *time.Time
	// NextClose is the first instant after the evaluated time at which a sync may not start:
	// when open, the end of the current open stretch; when closed, the end of the open stretch
	// that begins at NextOpen. Nil when not found within HorizonYears (or the search limit).
	NextClose *time.Time
}

// Evaluate answers whether a sync may start at time at under the windows ws (all of them apply:
// ferry scopes windows per project), with Argo CD's CanSync rules. manual says whether the sync is
// manual (Argo CD's isManual), which lets it through active deny windows that all have
// manual_sync, and outside allow windows that all have manual_sync. See the package
// documentation for the exact rules. Evaluate is safe for concurrent use.
func Evaluate(ws []Window, at time.Time, manual bool) Status {
	e := newEvaluator(ws, manual)
	if len(e.ws) == 0 {
		return Status{Open: true, Reason: "no deployment windows"}
	}
	x := at.Unix()
	limit := at.AddDate(HorizonYears, 0, 0).Unix()
	act := e.actives(x, nil)
	v := e.decide(act)
	e.budget = searchBudget

	st := Status{Open: v.open}
	st.Reason, st.Window = e.reason(v, act, x, limit)
	ptr := func(t int64) *time.Time { u := time.Unix(t, 0).In(at.Location()); return &u }
	first, ok := e.search(x, v.open, limit)
	if !ok {
		if !v.open {
			if e.budget <= 0 {
				st.Reason += fmt.Sprintf("; it does not open before %s (search limit reached)", stamp(e.stopped))
			} else {
				st.Reason += fmt.Sprintf("; it does not open within %d years", HorizonYears)
			}
		}
		return st
	}
	second, ok := e.search(first, !v.open, limit)
	if v.open {
		st.NextClose = ptr(first)
		if ok {
			st.NextOpen = ptr(second)
		}
	} else {
		st.NextOpen = ptr(first)
		if ok {
			st.NextClose = ptr(second)
		}
	}
	return st
}

// Active reports whether w is active at t: some start s with s ≤ t < s + duration (see the
// package documentation). The zero Window is never active.
func (w Window) Active(t time.Time) bool {
	e := newEvaluator([]Window{w}, false)
	return len(e.ws) == 1 && e.active(0, t.Unix())
}

// evaluator holds one evaluation's cursors; Windows stay read-only.
type evaluator struct {
	ws     []*Window
	cs     []cursor
	budget int
	manual bool
	// allowRuleBlocks: allow windows exist and, with none active, they block this sync.
	allowRuleBlocks bool
	// stopped is where the last search gave up.
	stopped int64
}

func newEvaluator(ws []Window, manual bool) *evaluator {
	e := &evaluator{manual: manual, budget: math.MaxInt}
	allowsManual := true
	for i := range ws {
		w := &ws[i]
		if (w.kind != Allow && w.kind != Deny) || w.loc == nil || len(w.sched.mins) == 0 || w.dur <= 0 {
			continue // the zero Window
		}
		e.ws = append(e.ws, w)
		if w.kind == Allow {
			e.allowRuleBlocks = true
			allowsManual = allowsManual && w.spec.ManualSync
		}
	}
	if manual && allowsManual {
		e.allowRuleBlocks = false
	}
	e.cs = make([]cursor, len(e.ws))
	for i, w := range e.ws {
		e.cs[i] = cursor{s: &w.sched, zc: zoneCache{loc: w.loc}, budget: &e.budget}
	}
	return e
}

// blocking reports whether window i, when active, blocks this sync on its own: every deny
// window, except those with manual_sync for a manual sync.
func (e *evaluator) blocking(i int) bool {
	w := e.ws[i]
	return w.kind == Deny && !(e.manual && w.spec.ManualSync)
}

// active reports whether window i is active at x: some start s with s ≤ x < s+duration.
func (e *evaluator) active(i int, x int64) bool {
	_, ok := e.cs[i].nextStart(x-e.ws[i].dur, x)
	return ok
}

// actives reports which windows are active at x, in buf when it is long enough.
func (e *evaluator) actives(x int64, buf []bool) []bool {
	act := buf[:0]
	for range e.ws {
		act = append(act, false)
	}
	for i := range e.ws {
		act[i] = e.active(i, x)
	}
	return act
}

// The rules of Argo CD's CanSync, in order.
const (
	ruleDeny                = iota // an active deny blocks
	ruleDenyManual                 // every active deny has manual_sync and the sync is manual
	ruleAllow                      // an allow is active
	ruleInactiveAllow              // allows exist, none active
	ruleInactiveAllowManual        // allows exist, none active, all have manual_sync, manual sync
	ruleInactiveDenies             // only inactive denies
)

type verdict struct {
	open bool
	rule int
}

// decide applies Argo CD's CanSync to the active windows.
func (e *evaluator) decide(act []bool) verdict {
	denyActive, blocked, allowActive, hasAllow := false, false, false, false
	for i, w := range e.ws {
		if w.kind == Allow {
			hasAllow = true
		}
		if !act[i] {
			continue
		}
		if w.kind == Deny {
			denyActive = true
			blocked = blocked || e.blocking(i)
		} else {
			allowActive = true
		}
	}
	switch {
	case blocked:
		return verdict{false, ruleDeny}
	case denyActive:
		return verdict{true, ruleDenyManual}
	case allowActive:
		return verdict{true, ruleAllow}
	case hasAllow && e.allowRuleBlocks:
		return verdict{false, ruleInactiveAllow}
	case hasAllow:
		return verdict{true, ruleInactiveAllowManual}
	}
	return verdict{true, ruleInactiveDenies}
}

// search returns the first instant after x at which the decision is no longer open (open) or no
// longer closed (!open), given that it is open (closed) at x; false when there is none by limit or
// the budget ran out. It steps only to instants where the decision can change: while closed by
// deny windows, to the last end of their runs; while closed outside allow windows, to the next
// start of an allow (or, manual, of a manual_sync deny); while open, to the next start of a
// blocking deny or the last end of the runs keeping it open.
func (e *evaluator) search(x int64, open bool, limit int64) (int64, bool) {
	cur := x
	act, next := make([]bool, len(e.ws)), make([]bool, len(e.ws))
	var idx []int
	for {
		e.stopped = cur
		if e.budget <= 0 {
			return 0, false
		}
		act = e.actives(cur, act)
		if e.budget <= 0 {
			return 0, false
		}
		var t int64
		var ok bool
		if open {
			for i := range e.ws {
				if e.blocking(i) {
					s, sok := e.cs[i].nextStart(cur, limit)
					t, ok = earliest(t, ok, s, sok)
				}
			}
			if e.allowRuleBlocks {
				idx = idx[:0]
				for i, w := range e.ws {
					if act[i] && (w.kind == Allow || !e.blocking(i)) {
						idx = append(idx, i)
					}
				}
				if end, endOK := e.lastEnd(idx, cur, limit); endOK {
					t, ok = earliest(t, ok, end, true)
				}
			}
		} else {
			idx = idx[:0]
			for i := range e.ws {
				if act[i] && e.blocking(i) {
					idx = append(idx, i)
				}
			}
			if len(idx) > 0 {
				t, ok = e.lastEnd(idx, cur, limit)
			} else {
				for i, w := range e.ws {
					if w.kind == Allow || !e.blocking(i) {
						s, sok := e.cs[i].nextStart(cur, limit)
						t, ok = earliest(t, ok, s, sok)
					}
				}
			}
		}
		if e.budget <= 0 || !ok || t > limit {
			return 0, false
		}
		next = e.actives(t, next)
		if e.budget <= 0 {
			return 0, false
		}
		if e.decide(next).open != open {
			return t, true
		}
		cur = t
	}
}

// lastEnd returns the latest end of the current runs of the (active) windows idx.
func (e *evaluator) lastEnd(idx []int, x, limit int64) (int64, bool) {
	var last int64
	for k, i := range idx {
		end, ok := e.cs[i].runEnd(x, e.ws[i].dur, limit)
		if !ok {
			return 0, false
		}
		if k == 0 || end > last {
			last = end
		}
	}
	return last, len(idx) > 0
}

// earliest folds a candidate (c, cok) into the running minimum (t, ok).
func earliest(t int64, ok bool, c int64, cok bool) (int64, bool) {
	if !cok {
		return t, ok
	}
	if !ok || c < t {
		return c, true
	}
	return t, true
}

// later reports whether run end (a, aok) is later than (b, bok); a missing end is the latest.
func later(a int64, aok bool, b int64, bok bool) bool {
	switch {
	case !aok:
		return bok
	case !bok:
		return false
	}
	return a > b
}

// reason returns the sentence explaining verdict v at x, and the deciding window's label.
func (e *evaluator) reason(v verdict, act []bool, x, limit int64) (string, string) {
	switch v.rule {
	case ruleDeny, ruleDenyManual, ruleAllow:
		// The active window of the deciding kind whose run lasts longest.
		best, bestEnd, bestOK := -1, int64(0), false
		for i, w := range e.ws {
			if !act[i] {
				continue
			}
			switch {
			case v.rule == ruleDeny && !e.blocking(i), v.rule == ruleAllow && w.kind != Allow, v.rule == ruleDenyManual && w.kind != Deny:
				continue
			}
			end, ok := e.cs[i].runEnd(x, w.dur, limit)
			if best < 0 || later(end, ok, bestEnd, bestOK) {
				best, bestEnd, bestOK = i, end, ok
			}
		}
		w := e.ws[best]
		s := describe(w) + " is active " + e.until(bestEnd, bestOK)
		switch {
		case v.rule == ruleDeny && e.manual:
			s += " and does not have manual_sync"
		case v.rule == ruleDenyManual:
			s += ", but every active deny window has manual_sync and the sync is manual"
		}
		return s, w.label
	case ruleInactiveAllow:
		if e.manual {
			for _, w := range e.ws {
				if w.kind == Allow && !w.spec.ManualSync {
					return "no allow window is active and " + describe(w) + " does not have manual_sync", w.label
				}
			}
		}
		best, bestStart, bestOK := -1, int64(0), false
		for i, w := range e.ws {
			if w.kind != Allow {
				continue
			}
			if s, ok := e.cs[i].nextStart(x, limit); ok && (!bestOK || s < bestStart) {
				best, bestStart, bestOK = i, s, true
			}
		}
		if !bestOK {
			return "no allow window is active", ""
		}
		w := e.ws[best]
		return "no allow window is active; the next to start is " + describe(w) + " at " + stamp(bestStart), w.label
	case ruleInactiveAllowManual:
		return "no allow window is active, but every allow window has manual_sync and the sync is manual", ""
	}
	return "no deny window is active", ""
}

// until phrases the end of a run.
func (e *evaluator) until(end int64, ok bool) string {
	switch {
	case ok:
		return "until " + stamp(end)
	case e.budget <= 0:
		return "past the search limit"
	}
	return fmt.Sprintf("and does not end within %d years", HorizonYears)
}

// describe names a window in reasons: `deny window deployment_window[1] ("December freeze")`.
func describe(w *Window) string {
	s := string(w.kind) + " window " + w.label
	if w.spec.Description != "" {
		s += fmt.Sprintf(" (%q)", w.spec.Description)
	}
	return s
}

// stamp formats an instant for reasons.
func stamp(t int64) string { return time.Unix(t, 0).UTC().Format(time.RFC3339) }
