package fleet

import "time"

// Report is the outcome of a rollout: every target in exactly one final state.
type Report struct {
	Fleet    string    `json:"fleet,omitempty"`
	Bundle   Bundle    `json:"bundle"`
	Executor string    `json:"executor"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Halted says the failure budget was crossed; HaltReason names the wave and its failures.
	Halted     bool   `json:"halted"`
	HaltReason string `json:"haltReason,omitempty"`
	// Interrupted says the rollout's context was canceled (Ctrl-C, or its lock was lost).
	Interrupted bool                `json:"interrupted,omitempty"`
	Waves       []WaveReport        `json:"waves"`
	Targets     []*TargetReport     `json:"targets"`
	Counts      map[TargetState]int `json:"counts"`

	byName map[string]*TargetReport
}

// WaveReport is one wave of the report.
type WaveReport struct {
	Name    string   `json:"name"`
	Targets []string `json:"targets"`
	Failed  int      `json:"failed"`
}

// TargetReport is one target of the report.
type TargetReport struct {
	Name        string      `json:"name"`
	Application string      `json:"application"`
	Wave        string      `json:"wave"`
	State       TargetState `json:"state"`
	// Class is the failure class of a failed target (argocd.Class: permanent, transient, stuck,
	// timeout, window, conflict, approval).
	Class   string `json:"class,omitempty"`
	Message string `json:"message,omitempty"`
	// AlreadyDone says the Application was already synced to the digest and healthy: the
	// executor did not run (a resumed rollout).
	AlreadyDone bool `json:"alreadyDone,omitempty"`
	// Started and Finished bound the executor's run (Started is the last start of a deferred
	// target); absent when it never ran.
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// DeferredUntil is when the target's window opens, while or after it was deferred.
	DeferredUntil *time.Time `json:"deferredUntil,omitempty"`
	// Output is the file holding the executor's output; OutputTail its last lines.
	Output     string `json:"output,omitempty"`
	OutputTail string `json:"outputTail,omitempty"`

	wave        int
	final       bool
	interrupted bool // halted because the rollout was interrupted while it ran
}

// Failures returns the failed targets, in the report's order.
func (r *Report) Failures() []*TargetReport {
	var out []*TargetReport
	for _, t := range r.Targets {
		if t.State == TargetFailed {
			out = append(out, t)
		}
	}
	return out
}

// Target returns the report of the target name, nil if it is not in the rollout.
func (r *Report) Target(name string) *TargetReport {
	if r.byName != nil {
		return r.byName[name]
	}
	for _, t := range r.Targets { // a report read back from JSON
		if t.Name == name {
			return t
		}
	}
	return nil
}
