package argocd

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// What ferry reads of an Application: its observed state and last operation.

// Result is the outcome of a successful sync or wait.
type Result struct {
	Name          string    `json:"name"`
	SyncStatus    string    `json:"syncStatus"`
	HealthStatus  string    `json:"healthStatus"`
	Revision      string    `json:"revision"`
	LastOperation Operation `json:"lastOperation"`
	// Retries is how many times ferry requested the sync again after a transient failure
	// (SyncOptions.TransientRetries); Argo CD's own retries are LastOperation.RetryCount.
	Retries int `json:"retries,omitempty"`
}

// Operation summarizes status.operationState.
type Operation struct {
	Phase       string `json:"phase"`
	Message     string `json:"message"`
	StartedAt   string `json:"startedAt"`
	FinishedAt  string `json:"finishedAt"`
	RetryCount  int64  `json:"retryCount"`
	RequestID   string `json:"requestId"`
	InitiatedBy string `json:"initiatedBy"`
}

// Status is the observed state of an Application.
type Status struct {
	Name             string     `json:"name"`
	Project          string     `json:"project"`
	RepoURL          string     `json:"repoURL"`
	TargetRevision   string     `json:"targetRevision"`
	SyncStatus       string     `json:"syncStatus"`
	HealthStatus     string     `json:"healthStatus"`
	HealthMessage    string     `json:"healthMessage,omitempty"`
	Revision         string     `json:"revision"`
	ReconciledAt     string     `json:"reconciledAt"`
	OperationRunning bool       `json:"operationRunning"`
	LastOperation    *Operation `json:"lastOperation,omitempty"`
	Conditions       []string   `json:"conditions,omitempty"`
	AutoSync         bool       `json:"autoSync"`
	OverrideReason   string     `json:"overrideReason,omitempty"`
}

// StatusOf reads the observed state of an Application object.
func StatusOf(app *unstructured.Unstructured) Status {
	s := Status{Name: app.GetName()}
	s.Project = str(app.Object, "spec", "project")
	s.RepoURL = str(app.Object, "spec", "source", "repoURL")
	s.TargetRevision = str(app.Object, "spec", "source", "targetRevision")
	s.SyncStatus = str(app.Object, "status", "sync", "status")
	s.HealthStatus = str(app.Object, "status", "health", "status")
	s.HealthMessage = str(app.Object, "status", "health", "message")
	s.Revision = str(app.Object, "status", "sync", "revision")
	s.ReconciledAt = str(app.Object, "status", "reconciledAt")
	if op, ok, _ := unstructured.NestedMap(app.Object, "operation"); ok && op != nil {
		s.OperationRunning = true
	}
	if opState, ok, _ := unstructured.NestedMap(app.Object, "status", "operationState"); ok && opState != nil {
		op := operationOf(opState)
		s.LastOperation = &op
		if op.Phase == "Running" || op.Phase == "Terminating" {
			s.OperationRunning = true
		}
	}
	conds, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			s.Conditions = append(s.Conditions, fmt.Sprintf("%v: %v", m["type"], m["message"]))
		}
	}
	enabled, found, _ := unstructured.NestedFieldNoCopy(app.Object, "spec", "syncPolicy", "automated", "enabled")
	if _, hasAuto, _ := unstructured.NestedMap(app.Object, "spec", "syncPolicy", "automated"); hasAuto {
		s.AutoSync = !found || enabled == nil || enabled == true
	}
	s.OverrideReason = app.GetAnnotations()[AnnotationOverride]
	return s
}

// SyncSettling reports an Application whose sync is not settled yet: an operation requested and
// not started, running or terminating, or finished but not reconciled since (its sync status may
// still be the one from before the operation). Its sync status says nothing about drift yet.
func SyncSettling(app *unstructured.Unstructured) bool {
	if op, ok, _ := unstructured.NestedMap(app.Object, "operation"); ok && op != nil {
		return true
	}
	opState, ok, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	if !ok || opState == nil {
		return false
	}
	switch str(opState, "phase") {
	case "Running", "Terminating":
		return true
	}
	finished, err := time.Parse(time.RFC3339, str(opState, "finishedAt"))
	if err != nil {
		return false
	}
	reconciled, err := time.Parse(time.RFC3339, str(app.Object, "status", "reconciledAt"))
	return err != nil || reconciled.Before(finished)
}

func operationOf(opState map[string]any) Operation {
	op := Operation{
		Phase:       str(opState, "phase"),
		Message:     str(opState, "message"),
		StartedAt:   str(opState, "startedAt"),
		FinishedAt:  str(opState, "finishedAt"),
		RequestID:   infoValue(opState, InfoRequestID),
		InitiatedBy: str(opState, "operation", "initiatedBy", "username"),
	}
	op.RetryCount, _, _ = unstructured.NestedInt64(opState, "retryCount")
	return op
}

func str(obj map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedString(obj, fields...)
	return s
}

func infoValue(opState map[string]any, name string) string {
	info, _, _ := unstructured.NestedSlice(opState, "operation", "info")
	for _, i := range info {
		if m, ok := i.(map[string]any); ok && m["name"] == name {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

// Status reads an Application's observed state.
func (c *Client) Status(ctx context.Context, name string) (*Status, error) {
	app, err := c.get(ctx, ApplicationGVR, name)
	if err != nil {
		return nil, err
	}
	s := StatusOf(app)
	return &s, nil
}
