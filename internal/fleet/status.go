package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Counts is how many environments (Applications, and environments without one) are in each
// state; Failed is split by failure class in FailedByClass.
type Counts struct {
	Done          int            `json:"done"`
	InProgress    int            `json:"inProgress"`
	Failed        int            `json:"failed"`
	FailedByClass map[string]int `json:"failedByClass,omitempty"`
	Unhealthy     int            `json:"unhealthy"`
	OutOfDate     int            `json:"outOfDate"`
	WindowClosed  int            `json:"windowClosed"`
	Missing       int            `json:"missing"`
	Total         int            `json:"total"`
}

// Count tallies the states of ls.
func Count(ls []Live) Counts {
	var c Counts
	for _, l := range ls {
		c.Total++
		switch l.State {
		case StateDone:
			c.Done++
		case StateInProgress:
			c.InProgress++
		case StateFailed:
			c.Failed++
			if c.FailedByClass == nil {
				c.FailedByClass = map[string]int{}
			}
			c.FailedByClass[l.FailureClass]++
		case StateUnhealthy:
			c.Unhealthy++
		case StateOutOfDate:
			c.OutOfDate++
		case StateWindowClosed:
			c.WindowClosed++
		case StateMissing:
			c.Missing++
		}
	}
	return c
}

// String says the counts in words, leaving out the states nothing is in: "12 done, 3 out of date,
// 1 failed (transient), 2 window closed, 1 missing".
func (c Counts) String() string {
	var parts []string
	add := func(n int, s State) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s.Text()))
		}
	}
	add(c.Done, StateDone)
	add(c.InProgress, StateInProgress)
	if c.Failed > 0 {
		var classes []string
		for _, class := range slices.Sorted(maps.Keys(c.FailedByClass)) {
			if n := c.FailedByClass[class]; n == c.Failed {
				classes = append(classes, class)
			} else {
				classes = append(classes, fmt.Sprintf("%d %s", n, class))
			}
		}
		parts = append(parts, fmt.Sprintf("%d failed (%s)", c.Failed, strings.Join(classes, ", ")))
	}
	add(c.Unhealthy, StateUnhealthy)
	add(c.OutOfDate, StateOutOfDate)
	add(c.WindowClosed, StateWindowClosed)
	add(c.Missing, StateMissing)
	if len(parts) == 0 {
		return "no environments"
	}
	return strings.Join(parts, ", ")
}
