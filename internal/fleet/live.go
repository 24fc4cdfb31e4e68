package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// State is where one environment stands against the requested revision.
type State string

// States, in the order fleet status counts them.
const (
	// StateDone: synced to the requested digest, healthy, no operation running, and the sync
	// status computed for that digest (Live.Done).
	StateDone State = "done"
	// StateInProgress: an operation is requested or running, or the Application targets the
	// digest and Argo CD has not yet compared, synced or reconciled it, or it is Progressing at
	// the digest.
	StateInProgress State = "inProgress"
	// StateFailed: the last operation to the requested digest failed (Live.FailureClass says how).
	StateFailed State = "failed"
	// StateUnhealthy: synced to the digest, with no operation running, but Degraded, Missing,
	// Suspended or Unknown.
	StateUnhealthy State = "unhealthy"
	// StateOutOfDate: not at the digest (another revision, or OutOfSync at it) and nothing running
	// towards it, with the deployment window open.
	StateOutOfDate State = "outOfDate"
	// StateWindowClosed: not at the digest, nothing running towards it, and the environment's
	// deployment window is closed now (or its windows are invalid).
	StateWindowClosed State = "windowClosed"
	// StateMissing: the environment has no Application.
	StateMissing State = "missing"
)

// States lists the states in the order fleet status counts them.
func States() []State {
	return []State{StateDone, StateInProgress, StateFailed, StateUnhealthy, StateOutOfDate, StateWindowClosed, StateMissing}
}

// Text returns the state as the text output writes it ("out of date").
func (s State) Text() string {
	switch s {
	case StateInProgress:
		return "in progress"
	case StateOutOfDate:
		return "out of date"
	case StateWindowClosed:
		return "window closed"
	}
	return string(s)
}

// Live is what the fleet reads of one environment and its Application, at one instant.
type Live struct {
	Environment string            `json:"environment"`
	Application string            `json:"application,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"` // the environment's (AppProject's) labels
	// Found says whether the Application exists.
	Found bool `json:"found"`
	// Project is the project the Application is in: the environment's, or its override project
	// while an override runs (Override).
	Project  string `json:"project,omitempty"`
	Override bool   `json:"override,omitempty"`
	// Digest is the revision the Application is judged against: the requested digest, or its own
	// targetRevision when none was requested.
	Digest  string `json:"digest,omitempty"`
	RepoURL string `json:"repoURL,omitempty"`
	// Revision is the digest the Application is synced to (status.sync.revision) and
	// TargetRevision the one it is told to sync to (spec.source.targetRevision).
	Revision       string `json:"revision,omitempty"`
	TargetRevision string `json:"targetRevision,omitempty"`
	// Deployed is the revision of the last successful sync (the last entry of status.history):
	// what runs. Revision is only what Argo CD last compared, the target once it did.
	Deployed string `json:"deployedRevision,omitempty"`
	// SyncStatus is Argo CD's sync status when it was computed for Digest (status.sync.revision
	// and status.sync.comparedTo are the digest and the Application's current source), and
	// OutOfSync otherwise: a Synced of another revision is never shown as Synced.
	SyncStatus   string `json:"syncStatus,omitempty"`
	HealthStatus string `json:"healthStatus,omitempty"`
	// Done says the Application is synced to the requested digest, healthy, with no operation
	// running, and its sync status was computed for that digest (never a stale Synced).
	Done  bool  `json:"done"`
	State State `json:"state"`
	// OperationPhase is the phase of the running or last operation; OperationRunning says one is
	// requested or running.
	OperationPhase   string `json:"operationPhase,omitempty"`
	OperationRunning bool   `json:"operationRunning,omitempty"`
	// FailureClass and FailureMessage describe the last failed operation, if the last operation
	// failed (argocd.Class as a string), whatever its revision; FailureRevision is the revision
	// it was to.
	FailureClass    string `json:"failureClass,omitempty"`
	FailureMessage  string `json:"failureMessage,omitempty"`
	FailureRevision string `json:"failureRevision,omitempty"`
	// WindowOpen says whether the environment's deployment window is open now for a manual sync
	// such as ferry's; WindowNextOpen and WindowNextClose say when it next changes, WindowReason
	// why, and WindowError says why the windows are invalid (then WindowOpen is false).
	WindowOpen      bool       `json:"windowOpen"`
	WindowNextOpen  *time.Time `json:"windowNextOpen,omitempty"`
	WindowNextClose *time.Time `json:"windowNextClose,omitempty"`
	WindowReason    string     `json:"windowReason,omitempty"`
	WindowError     string     `json:"windowError,omitempty"`
	// Window is the environment's deployment window for a manual sync now.
	Window window.Status `json:"-"`
}

// Selector chooses environments: by the labels of their AppProjects (a Kubernetes label selector,
// "tier=canary,region in (eu,us)"), by name, or both; empty selects every environment ferry manages.
type Selector struct {
	Labels string
	Names  []string
	// RepoURL, when set (oci://host/repo), is the repository of the requested bundle: an
	// Application whose source is another repository is not at the bundle, whatever its revision.
	RepoURL string
}

// ErrInvalidSelector is returned by [Observe] for a label selector Kubernetes would refuse.
var ErrInvalidSelector = errors.New("invalid label selector")

// namesInSelector is how many names Observe puts into a set-based label selector
// (ferry.dev/environment in (…)); more are filtered after listing every managed environment, so
// the request stays short.
const namesInSelector = 100

// Observe reads the environments sel selects and their Applications with one paginated list of
// each kind (never one request per environment), and evaluates each one against digest (""
// means whatever each Application targets) and its window at now.
//
// The environments are the AppProjects labelled app.kubernetes.io/managed-by=ferry that sel
// selects; override projects (NAME.ferry-override) are not environments: an Application an
// override moved there counts for its environment. The Applications are those labelled
// app.kubernetes.io/managed-by=ferry, joined to their environment by the ferry.dev/environment
// label (or their project, for one written before ferry set the label). The result has one Live
// per Application and one, with Found false, per environment without one, sorted by environment
// and application; a name of sel.Names that is no managed environment is left out.
func Observe(ctx context.Context, c *argocd.Client, sel Selector, digest string, now time.Time) ([]Live, error) {
	projectSel := argocd.LabelManagedBy + "=" + argocd.ManagedByFerry
	appSel := projectSel
	if sel.Labels != "" {
		if _, err := labels.Parse(sel.Labels); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidSelector, sel.Labels, err)
		}
		projectSel += "," + sel.Labels
	}
	names := map[string]bool{}
	for _, n := range sel.Names {
		names[n] = true
	}
	if len(names) > 0 && len(names) <= namesInSelector {
		in := argocd.LabelEnvironment + " in (" + strings.Join(slices.Sorted(maps.Keys(names)), ",") + ")"
		if _, err := labels.Parse(in); err == nil { // a name that is no label value cannot match anyway
			// Projects only: an Application written before ferry labelled Applications has no
			// ferry.dev/environment label and is joined by its project below.
			projectSel += "," + in
		}
	}
	// The two lists run at once: the API server encodes one while ferry decodes the other.
	var apps []unstructured.Unstructured
	var appsErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		apps, appsErr = c.ListApplications(ctx, appSel)
	}()
	projects, err := c.ListProjects(ctx, projectSel)
	<-listed
	if err != nil {
		return nil, err
	}
	if appsErr != nil {
		return nil, appsErr
	}
	envs := map[string]*unstructured.Unstructured{}
	for i := range projects {
		p := &projects[i]
		name := p.GetName()
		if argocd.ProjectEnvironment(name) != name || (len(names) > 0 && !names[name]) {
			continue // an override project, or not asked for
		}
		envs[name] = p
	}
	var out []Live
	seen := map[string]bool{}
	for i := range apps {
		app := &apps[i]
		env := app.GetLabels()[argocd.LabelEnvironment]
		if env == "" {
			env = argocd.ProjectEnvironment(str(app, "spec", "project"))
		}
		p, ok := envs[env]
		if !ok {
			continue
		}
		seen[env] = true
		out = append(out, judge(p, app, sel.RepoURL, digest, now))
	}
	for name, p := range envs {
		if !seen[name] {
			out = append(out, judge(p, nil, sel.RepoURL, digest, now))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Environment != out[j].Environment {
			return out[i].Environment < out[j].Environment
		}
		return out[i].Application < out[j].Application
	})
	return out, nil
}

// ObserveOne reads one environment and one Application by name — two GETs, whatever the size of
// the fleet — and judges them as [Observe] does. A missing environment or Application has Found
// false; a missing environment's window is open (it has none).
func ObserveOne(ctx context.Context, c *argocd.Client, environment, application, repoURL, digest string, now time.Time) (Live, error) {
	p, err := c.GetProject(ctx, environment)
	if errors.Is(err, argocd.ErrNotFound) {
		return Live{Environment: environment, Application: application, Digest: digest, State: StateMissing, Window: window.Status{Open: true}, WindowOpen: true}, nil
	}
	if err != nil {
		return Live{}, err
	}
	app, err := c.GetApplication(ctx, application)
	if errors.Is(err, argocd.ErrNotFound) {
		l := judge(p, nil, repoURL, digest, now)
		l.Application = application
		return l, nil
	}
	if err != nil {
		return Live{}, err
	}
	return judge(p, app, repoURL, digest, now), nil
}

// judge reads one environment (its project p) and one of its Applications (nil for none) against
// digest ("" for the Application's own targetRevision) at now.
func judge(p, app *unstructured.Unstructured, repoURL, digest string, now time.Time) Live {
	l := Live{Environment: p.GetName(), Labels: envLabels(p), Digest: digest}
	ws, err := argocd.ProjectWindowStatus(p, app, now)
	if err != nil {
		l.WindowError = err.Error()
	} else {
		l.Window = ws
		l.WindowOpen, l.WindowNextOpen, l.WindowNextClose, l.WindowReason = ws.Open, utc(ws.NextOpen), utc(ws.NextClose), ws.Reason
	}
	if app == nil {
		l.State = StateMissing
		return l
	}
	l.Found = true
	l.Application = app.GetName()
	st := argocd.StatusOf(app)
	l.Project, l.Override = st.Project, st.Project != l.Environment
	l.RepoURL, l.TargetRevision, l.Revision, l.HealthStatus = st.RepoURL, st.TargetRevision, st.Revision, st.HealthStatus
	l.OperationRunning = st.OperationRunning
	if h, _, _ := unstructured.NestedSlice(app.Object, "status", "history"); len(h) > 0 {
		if last, ok := h[len(h)-1].(map[string]any); ok {
			l.Deployed, _ = last["revision"].(string)
		}
	}
	if st.LastOperation != nil {
		l.OperationPhase = st.LastOperation.Phase
	}
	if l.Digest == "" {
		l.Digest = st.TargetRevision
	}
	if f := argocd.LastFailure(app); f != nil {
		l.FailureClass, l.FailureMessage, l.FailureRevision = string(f.Class), f.Message, f.Revision
	}

	repoOK := repoURL == "" || sameRepo(repoURL, st.RepoURL)
	// The sync status says something about the digest only when Argo CD computed it for the
	// Application's current source and that source is the digest: right after targetRevision
	// changed, status.sync still holds the old comparison (Synced at the old revision).
	comparedFor := str(app, "status", "sync", "comparedTo", "source", "targetRevision") == st.TargetRevision &&
		sameRepo(str(app, "status", "sync", "comparedTo", "source", "repoURL"), st.RepoURL)
	atDigest := repoOK && l.Digest != "" && st.TargetRevision == l.Digest && st.Revision == l.Digest && comparedFor
	switch {
	case atDigest:
		l.SyncStatus = st.SyncStatus
	case st.SyncStatus != "":
		l.SyncStatus = "OutOfSync"
	}
	settling := argocd.SyncSettling(app)
	l.Done = atDigest && st.SyncStatus == "Synced" && st.HealthStatus == "Healthy" && !st.OperationRunning && !settling
	towards := repoOK && l.Digest != "" && st.TargetRevision == l.Digest // the Application is told to go to the digest
	held := st.OperationRunning && st.LastOperation != nil && strings.HasPrefix(st.LastOperation.Message, "Sync operation blocked by sync window")
	failedForDigest := l.FailureClass != "" && l.FailureRevision == l.Digest && towards
	windowClosed := !l.WindowOpen
	switch {
	case l.Done:
		l.State = StateDone
	case held:
		l.State = StateWindowClosed
	case st.OperationRunning:
		l.State = StateInProgress
	case failedForDigest:
		l.State = StateFailed
	case towards && (!comparedFor || settling):
		l.State = StateInProgress
	case atDigest && st.SyncStatus == "Synced" && st.HealthStatus == "Progressing":
		l.State = StateInProgress
	case atDigest && st.SyncStatus == "Synced":
		l.State = StateUnhealthy
	case windowClosed:
		l.State = StateWindowClosed
	default:
		l.State = StateOutOfDate
	}
	return l
}

// sameRepo compares two oci:// repository URLs as Argo CD's project check does: case and a
// trailing slash aside.
func sameRepo(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// envLabels returns the labels of an environment's project that its user set.
func envLabels(p *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for k, v := range p.GetLabels() {
		if k != argocd.LabelManagedBy && k != argocd.LabelEnvironment {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func str(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}
