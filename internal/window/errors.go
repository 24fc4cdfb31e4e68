package window

import (
	"errors"
	"strings"
)

// ErrInvalidWindow is wrapped by every error [Parse] returns: each problem is a [*SpecError]
// that names the window and the field, and Parse joins them with errors.Join.
var ErrInvalidWindow = errors.New("invalid deployment window")

// SpecError is one problem with one window spec, as returned (joined) by [Parse].
//
// Its message is "<label>.<field>: <problem>", for example
// `deployment_window[2].time_zone: unknown time zone "Europe/Berln"`, or "<label>: <problem>" when
// Field is empty. Messages never contain a newline, so the lines of a joined error are the problems.
// It matches [ErrInvalidWindow] and its cause with errors.Is.
type SpecError struct {
	// Index is the position of the window in the specs given to Parse.
	Index int
	// Label is label(Index), the window's name in messages.
	Label string
	// Field is the field at fault: "kind", "schedule", "duration", "time_zone" or "description";
	// empty when the whole window is at fault (a duplicate). Callers that check a window's scope
	// name a pattern the same way, e.g. "applications[1]".
	Field string
	// Err is the problem, without the label and the field.
	Err error
}

// Error returns "<label>.<field>: <problem>", with line breaks in user input escaped as \n and \r.
func (e *SpecError) Error() string {
	s := e.Label + ": " + e.Err.Error()
	if e.Field != "" {
		s = e.Label + "." + e.Field + ": " + e.Err.Error()
	}
	return oneLine.Replace(s)
}

// oneLine keeps a message on one line.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// Unwrap returns ErrInvalidWindow and the cause.
func (e *SpecError) Unwrap() []error { return []error{ErrInvalidWindow, e.Err} }

// ErrUnsupportedGlob is wrapped by the errors of [Glob] and [Scope.Validate] for a pattern
// outside the glob syntax ferry accepts.
var ErrUnsupportedGlob = errors.New("unsupported glob pattern")
