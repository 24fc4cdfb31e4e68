package argocd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
)

// Reading failures out of an Application: classes, failing resources, still OutOfSync.

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// invalidSpec returns the message of an InvalidSpecError or UnknownError condition.
func invalidSpec(app *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && (m["type"] == "InvalidSpecError") {
			return fmt.Sprint(m["message"])
		}
	}
	return ""
}

// approvalError is the approval class for a running operation with message msg, or nil when the
// operation is not waiting for a confirmation.
func approvalError(namespace, app, msg, rid string, now time.Time) *SyncError {
	if !strings.HasPrefix(msg, pruneConfirmationPrefix) {
		return nil
	}
	return &SyncError{Class: ClassApproval, Summary: "Sync needs approval: Argo CD waits for a pruning confirmation", LastMessage: msg, RequestID: rid,
		Resources: waitingFor(msg, pruneConfirmationPrefix, "RequiresPruningConfirmation"),
		Advice:    fmt.Sprintf("Approve with: kubectl -n %s annotate application %s %s=%s", namespace, app, AnnotationDeletionApproved, now.UTC().Format(time.RFC3339))}
}

// waitingFor returns the resource a Running operation's message names after prefix, in Argo CD's
// "<group>/<kind>/<name>[ and N more resources]" form, with status.
func waitingFor(msg, prefix, status string) []Resource {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, " and ")
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return nil
	}
	return []Resource{{Group: parts[0], Kind: parts[1], Name: parts[2], Status: status}}
}

// failingResources lists the resources of the last sync result that failed, then the unhealthy
// ones Argo CD reports.
func failingResources(app *unstructured.Unstructured) []Resource {
	if app == nil {
		return nil
	}
	var out []Resource
	res, _, _ := unstructured.NestedSlice(app.Object, "status", "operationState", "syncResult", "resources")
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		status, _ := m["status"].(string)
		if status != "SyncFailed" {
			continue
		}
		out = append(out, resourceOf(m, status))
	}
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		h, _ := m["health"].(map[string]any)
		hs, _ := h["status"].(string)
		if hs == "Degraded" || hs == "Missing" || hs == "Progressing" {
			res := resourceOf(m, hs)
			res.Message, _ = h["message"].(string)
			if !slices.ContainsFunc(out, func(o Resource) bool { return o.Kind == res.Kind && o.Name == res.Name && o.Namespace == res.Namespace }) {
				out = append(out, res)
			}
		}
	}
	if len(out) == 0 {
		// Argo CD names the culprit in the health message: "Caused by apps/Deployment:ns/name".
		if msg := str(app.Object, "status", "health", "message"); strings.HasPrefix(msg, "Caused by ") {
			ref := strings.TrimPrefix(msg, "Caused by ")
			ref, _, _ = strings.Cut(ref, ",")
			gk, nsName, _ := strings.Cut(ref, ":")
			group, kind, found := strings.Cut(gk, "/")
			if !found {
				group, kind = "", gk
			}
			ns, name, found := strings.Cut(nsName, "/")
			if !found {
				ns, name = "", nsName
			}
			out = append(out, Resource{Group: group, Kind: kind, Namespace: ns, Name: strings.TrimSpace(name), Status: str(app.Object, "status", "health", "status")})
		}
	}
	return out
}

func resourceOf(m map[string]any, status string) Resource {
	r := Resource{Status: status}
	r.Group, _ = m["group"].(string)
	r.Kind, _ = m["kind"].(string)
	r.Namespace, _ = m["namespace"].(string)
	r.Name, _ = m["name"].(string)
	r.Message, _ = m["message"].(string)
	return r
}

func pruneSkipped(opState map[string]any) int {
	n := 0
	res, _, _ := unstructured.NestedSlice(opState, "syncResult", "resources")
	for _, r := range res {
		if m, ok := r.(map[string]any); ok && m["status"] == "PruneSkipped" {
			n++
		}
	}
	return n
}

// annotationRefresh asks Argo CD to compare an application again; the controller removes it
// when it did.
const annotationRefresh = "argocd.argoproj.io/refresh"

// outOfSyncResources lists the resources Argo CD reports OutOfSync.
func outOfSyncResources(app *unstructured.Unstructured) []Resource {
	var out []Resource
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		if m, ok := r.(map[string]any); ok && m["status"] == "OutOfSync" {
			out = append(out, resourceOf(m, "OutOfSync"))
		}
	}
	return out
}

// outOfSyncSettle is how long an application must have been seen OutOfSync after its operation
// succeeded before ferry asks for the refresh that decides it: the controller compares against its
// cluster cache, which the watch of the applied objects updates a moment after the apply, and a
// comparison made before that (even one ferry asked for) is a stale OutOfSync that the next
// resource event clears. Seen in BenchmarkReactionLatency: a ConfigMap reported OutOfSync by two
// comparisons within a second of the sync that configured it.
const outOfSyncSettle = 10 * time.Second

// outOfSyncWatch decides when an application still OutOfSync at the digest after its operation
// succeeded (and reconciled since, with no resources left for pruning) has failed: once it has
// been seen so for outOfSyncSettle, it asks Argo CD for a refresh, and once the controller has
// processed it — the annotation is gone and reconciledAt moved past its value when ferry asked
// — an application still OutOfSync differs from what the sync applied (docs/sync.md, "still
// OutOfSync"). Events older than the refresh have no annotation either, but not a later reconciledAt.
type outOfSyncWatch struct {
	// refresh asks Argo CD for a refresh (Client.refresh, or a fake in tests).
	refresh  func(ctx context.Context, name string) (*unstructured.Unstructured, error)
	since    time.Time // first seen OutOfSync after the operation
	requests int       // refreshes asked for
	sent     time.Time // when the last was asked for
	version  string    // the Application's resourceVersion the last refresh wrote
	base     time.Time // its reconciledAt then
}

// failure observes app (reconciled at reconciled) and returns the permanent failure, or nil while
// it waits.
func (w *outOfSyncWatch) failure(ctx context.Context, app *unstructured.Unstructured, reconciled, now time.Time, rid string) *SyncError {
	if w.since.IsZero() {
		w.since = now
	}
	if now.Sub(w.since) < outOfSyncSettle {
		return nil
	}
	_, pending := app.GetAnnotations()[annotationRefresh]
	// reconciledAt has a one-second resolution: a refresh processed within the second of the
	// previous comparison leaves it unchanged, so ask again (a few times, a second apart) rather
	// than wait for the periodic resync.
	again := w.requests > 0 && w.requests < 4 && !pending && newerVersion(app.GetResourceVersion(), w.version) &&
		!reconciled.After(w.base) && now.Sub(w.sent) >= time.Second
	if w.requests == 0 || again {
		w.requests++
		w.sent = now
		if patched, err := w.refresh(ctx, app.GetName()); err == nil {
			w.base, _ = time.Parse(time.RFC3339, str(patched.Object, "status", "reconciledAt"))
			w.version = patched.GetResourceVersion()
		}
		return nil
	}
	if pending || w.base.IsZero() || !reconciled.After(w.base) {
		return nil
	}
	resources := outOfSyncResources(app)
	summary := "Sync incomplete: still OutOfSync after the sync"
	if len(resources) > 0 {
		summary += ": " + resources[0].String()
	}
	return &SyncError{Class: ClassPermanent, Summary: summary, LastMessage: str(app.Object, "status", "operationState", "message"), Resources: resources, RequestID: rid,
		Advice: "Argo CD applied the bundle, but the live objects still differ from it: a field the API server drops or rewrites " +
			"(an unknown field pruned by a CRD's schema, a normalized value, a mutating webhook) or another controller changing them. Fix the manifests so they match what the cluster keeps."}
}

// newerVersion reports whether resourceVersion a is later than b (etcd revisions; false when
// either is not a number).
func newerVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// refresh asks Argo CD for a normal refresh through the annotation.
func (c *Client) refresh(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	patch := `{"metadata":{"annotations":{"` + annotationRefresh + `":"normal"}}}`
	return c.res(ApplicationGVR).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager + "-refresh"})
}

// pruneConfirmationPrefix starts the message of an operation that waits for a Prune=confirm
// resource to be approved.
const pruneConfirmationPrefix = "waiting for pruning confirmation of "

// Classifying a failed operation (phase Failed or Error) from what Argo CD records about it
// (docs/sync.md, failure classes): the resources of its sync result (status SyncFailed, hook phase
// Failed or Error), the Application condition types it failed with, gRPC status codes, and, where
// Argo CD passes on only an error's text, the exact forms in which Go, client-go, oras-go and
// Argo CD itself print the few errors that are worth retrying.

// failure is the classification of a failed operation.
type failure struct {
	class Class
	// manifests is set when Argo CD could not generate the manifests (a ComparisonError loading
	// the target state that retrying cannot help): the repo-server's error.
	manifests string
}

// Argo CD's condition types (ApplicationConditionType in Argo CD's
// pkg/apis/application/v1alpha1/types.go) that fail an operation or report why one failed.
const (
	condComparisonError  = "ComparisonError"  // the target (repo-server) or live (cluster) state failed to load
	condInvalidSpecError = "InvalidSpecError" // the spec or project is invalid
	condUnknownError     = "UnknownError"
	condSyncError        = "SyncError" // an automated sync failed
)

// Message forms Argo CD writes as text only, each anchored, with the function that writes it.
const (
	// targetStatePrefix starts a ComparisonError's message when the repo-server failed:
	// appStateManager.CompareAppState (controller/state.go).
	targetStatePrefix = "Failed to load target state: "
	// syncWindowBlocked is the whole message of an operation held by a sync window, or its
	// prefix followed by ": invalid sync windows: …" when a window is invalid:
	// appStateManager.SyncAppState (controller/sync.go).
	syncWindowBlocked = "Sync operation blocked by sync window"
	// invalidSyncWindows follows syncWindowBlocked when a window is invalid: SyncWindows.CanSync
	// (pkg/apis/application/v1alpha1/types.go) wraps the parse error with it.
	invalidSyncWindows = syncWindowBlocked + ": invalid sync windows: "
	// operationTerminated is the whole message of a terminated operation: syncContext.Terminate
	// (gitops-engine pkg/sync/sync_context.go).
	operationTerminated = "Operation terminated"
)

// syncTimeoutTerminating is the message of an operation the controller's --sync-timeout is
// terminating (phase Terminating): ApplicationController.processRequestedAppOperation
// (controller/appcontroller.go). The operation then ends with operationTerminated, or with
// controllerSyncTimeoutRE's suffix in the Argo CD versions that append it.
const syncTimeoutTerminating = "operation is terminating due to timeout"

// controllerSyncTimeoutRE matches the end of the message of an operation the controller's
// --sync-timeout ended: ApplicationController.processRequestedAppOperation
// (controller/appcontroller.go) appends ", triggered by controller sync timeout", and " (retried N
// times)." after retries.
var controllerSyncTimeoutRE = regexp.MustCompile(`, triggered by controller sync timeout( \(retried \d+ times\)\.)?$`)

// retriedSuffixRE matches what Argo CD appends to the message of an operation it retried:
// ApplicationController.processRequestedAppOperation.
var retriedSuffixRE = regexp.MustCompile(` \(retried \d+ times\)\.$`)

// classifyFailure classifies ferry's failed operation opState. A cause is what one failed
// resource, or one condition the operation failed with (Argo CD joins them as "Type: message;…":
// FormatAppConditions in util/argo/argo.go), or else the operation's message says; the failure is
// transient when every cause is (a network or availability error: retrying may succeed), and
// permanent otherwise.
func classifyFailure(opState map[string]any) failure {
	msg := str(opState, "message")
	var conds []condition // a failed resource is a condition without a type
	res, _, _ := unstructured.NestedSlice(opState, "syncResult", "resources")
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		status, _ := m["status"].(string)
		hook, _ := m["hookPhase"].(string)
		if status == "SyncFailed" || hook == "Failed" || hook == "Error" {
			text, _ := m["message"].(string)
			conds = append(conds, condition{message: text})
		}
	}
	if len(conds) == 0 {
		conds = operationConditions(msg)
	}
	if len(conds) == 0 {
		conds = []condition{{message: msg}}
	}
	f := failure{class: ClassTransient}
	for _, c := range conds {
		if causeClass(c.typ, c.message) == ClassTransient {
			continue
		}
		f.class = ClassPermanent
		if c.typ == condComparisonError && strings.HasPrefix(c.message, targetStatePrefix) && f.manifests == "" {
			f.manifests = repoServerError(c.message)
		}
	}
	return f
}

// condition is one Application condition.
type condition struct {
	typ, message string
}

// errorConditionTypes are the condition types that fail an operation.
var errorConditionTypes = []string{condComparisonError, condInvalidSpecError, condUnknownError, condSyncError}

// operationConditions splits the message of an operation that failed on the application's error
// conditions ("ComparisonError: …;InvalidSpecError: …", FormatAppConditions) into them; nil when
// msg is not in that form.
func operationConditions(msg string) []condition {
	typeAt := func(s string) string {
		for _, t := range errorConditionTypes {
			if strings.HasPrefix(s, t+": ") {
				return t
			}
		}
		return ""
	}
	if typeAt(msg) == "" {
		return nil
	}
	var out []condition
	for msg != "" {
		typ := typeAt(msg)
		rest := msg[len(typ)+2:]
		end := len(rest)
		for i := strings.IndexByte(rest, ';'); i >= 0; {
			if typeAt(rest[i+1:]) != "" {
				end = i
				break
			}
			j := strings.IndexByte(rest[i+1:], ';')
			if j < 0 {
				break
			}
			i += 1 + j
		}
		out = append(out, condition{typ: typ, message: rest[:end]})
		if end == len(rest) {
			break
		}
		msg = rest[end+1:]
	}
	return out
}

// repoServerError returns what a target-state ComparisonError says the repo-server reported: the
// gRPC status message when there is one, else the text after the prefix.
func repoServerError(msg string) string {
	if _, desc, ok := grpcStatus(msg); ok {
		return desc
	}
	return strings.TrimPrefix(msg, targetStatePrefix)
}

// causeClass classifies one cause: a condition of type typ ("" for a resource's or an operation's
// message) with message msg: permanent when nothing typed says it is transient.
func causeClass(typ, msg string) Class {
	if typ == condInvalidSpecError {
		return ClassPermanent // the spec or project must change
	}
	msg = retriedSuffixRE.ReplaceAllString(msg, "")
	if destinationClusterNotFound(msg) {
		return ClassTransient
	}
	// A status whose code says nothing wraps what the server passed on, which may be another
	// status (the repo-server's inside the controller's): decode until a code decides.
	for {
		code, desc, ok := grpcStatus(msg)
		if !ok {
			break
		}
		switch code {
		case "Unavailable", "DeadlineExceeded", "ResourceExhausted", "Aborted":
			return ClassTransient
		case "Unknown", "Internal", "DataLoss":
			msg = desc // the code says nothing: look at what the server wrapped
			continue
		}
		return ClassPermanent
	}
	if status, ok := httpStatus(msg); ok {
		if status == 408 || status == 429 || status >= 500 {
			return ClassTransient
		}
		return ClassPermanent
	}
	if networkError(msg) {
		return ClassTransient
	}
	return ClassPermanent
}

// destinationClusterPrefix starts the message of an operation whose destination cluster Argo CD
// could not look up: appStateManager.SyncAppState (controller/sync.go) writes "Failed to get
// destination cluster: %v" with the error of argo.GetDestinationCluster (util/argo/argo.go).
const destinationClusterPrefix = "Failed to get destination cluster: "

// destinationClusterNotFound reports whether msg is the operation message of a destination
// cluster Argo CD's cluster cache does not know (yet): db.GetCluster's gRPC NotFound. Right after
// ferry writes an environment's cluster Secret, the controller's informer may not have seen it;
// the next attempt finds it. A cluster that really does not exist fails the application's spec
// validation (InvalidSpecError) instead, and ferry's retries are bounded.
func destinationClusterNotFound(msg string) bool {
	rest, ok := strings.CutPrefix(msg, destinationClusterPrefix)
	if !ok {
		return false
	}
	code, _, ok := grpcStatus(rest)
	return ok && code == "NotFound"
}

// grpcStatusRE matches a gRPC status as status.Status.Error prints it (grpc internal/status):
// "rpc error: code = <Code> desc = <message>", the code as codes.Code.String names it.
var grpcStatusRE = regexp.MustCompile(`rpc error: code = ([A-Za-z]+) desc = `)

// grpcCodes are the names codes.Code.String gives the gRPC status codes.
var grpcCodes = map[string]bool{"OK": true, "Canceled": true, "Unknown": true, "InvalidArgument": true, "DeadlineExceeded": true,
	"NotFound": true, "AlreadyExists": true, "PermissionDenied": true, "ResourceExhausted": true, "FailedPrecondition": true,
	"Aborted": true, "OutOfRange": true, "Unimplemented": true, "Internal": true, "Unavailable": true, "DataLoss": true, "Unauthenticated": true}

// grpcStatus returns the code and message of the first gRPC status in msg (Argo CD passes the
// repo-server's status on inside its own wrapping).
func grpcStatus(msg string) (code, desc string, ok bool) {
	m := grpcStatusRE.FindStringSubmatchIndex(msg)
	if m == nil || !grpcCodes[msg[m[2]:m[3]]] {
		return "", "", false
	}
	return msg[m[2]:m[3]], msg[m[1]:], true
}

// httpStatusRE matches the HTTP status of a registry's error response as oras-go prints it
// (errcode.ErrorResponse.Error in oras-go registry/remote/errcode): `<METHOD> "<url>": response
// status code <N>: <text>`.
var httpStatusRE = regexp.MustCompile(`\b[A-Z]+ "[^"]*": response status code (\d{3}): `)

// httpStatus returns the HTTP status of a registry error response in msg.
func httpStatus(msg string) (int, bool) {
	m := httpStatusRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// networkErrorREs match the network and availability errors worth retrying, in the form Go's
// net and net/http packages, client-go and apimachinery print them (Argo CD passes them on as
// text):
var networkErrorREs = []*regexp.Regexp{
	// net.OpError.Error: "dial tcp 127.0.0.1:5000: connect: connection refused", "read tcp
	// a->b: read: connection reset by peer", "dial tcp: lookup host: no such host", "… i/o timeout".
	regexp.MustCompile(`\b(dial|read|write) (tcp|tcp4|tcp6|udp|unix)( \S+)?: `),
	// url.Error.Error of net/http's client: `Get "https://…": EOF`, `…: net/http: TLS handshake
	// timeout`, `…: context deadline exceeded (Client.Timeout exceeded while awaiting headers)`.
	regexp.MustCompile(`\b(Get|Head|Post|Put|Patch|Delete) "[^"]*": (EOF|unexpected EOF|net/http: TLS handshake timeout|net/http: timeout awaiting response headers|context deadline exceeded)`),
	// apimachinery's errors.NewGenericServerResponse (client-go's error for a 500, 503, 504 or
	// 429 without a Status body).
	regexp.MustCompile(`\bthe server (is currently unable to handle the request|was unable to return a response in the time allotted|has received too many requests and has asked us to try again later)`),
	regexp.MustCompile(`\ban error on the server \(".*"\) has prevented the request from succeeding`),
	// context.DeadlineExceeded and io.ErrUnexpectedEOF at the end of a wrapped error.
	regexp.MustCompile(`: (context deadline exceeded|unexpected EOF)$`),
	// net/http's http2 client errors after the server went away (errClientConnGotGoAway's
	// "http2: server sent GOAWAY and closed the connection; LastStreamID=…", errClientConnLost),
	// and its wait for a connection cancelled, each as a wrapped error.
	regexp.MustCompile(`: (http2: server sent GOAWAY and closed the connection|http2: client connection lost|net/http: request canceled while waiting for connection)\b`),
	// url.Error.Error of a request that hit net/http's Client.Timeout before the headers.
	regexp.MustCompile(`\(Client\.Timeout exceeded while awaiting headers\)$`),
}

// networkError reports whether msg carries a network or availability error.
func networkError(msg string) bool {
	for _, re := range networkErrorREs {
		if re.MatchString(msg) {
			return true
		}
	}
	return false
}

// apiErrorClass classifies the error of a Kubernetes API call ferry makes itself, from its type
// (apimachinery's StatusError): a request the API server rejects as not found (also ErrNotFound,
// Client.get's), forbidden, unauthorized, invalid or bad is permanent, as are credentials that
// cannot be obtained (kube.ErrCredentials: a failing exec plugin, an unreadable token) and a
// server certificate that does not verify; anything else — a timeout, 429 or 5xx status, or a
// transport error (client-go's url.Error: a refused or reset connection, EOF, a deadline) — is
// transient, and ferry's retries of it are bounded.
func apiErrorClass(err error) Class {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, kube.ErrCredentials), certificateError(err),
		apierrors.IsNotFound(err), apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err), apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err), apierrors.IsGone(err):
		return ClassPermanent
	}
	return ClassTransient
}

// PermanentAPIError reports whether err, of a Kubernetes API call, is one retrying cannot fix
// (apiErrorClass): the CLI's exit code for the API calls it makes itself.
func PermanentAPIError(err error) bool {
	return apiErrorClass(err) == ClassPermanent
}

// certificateError reports whether err is a failure to verify the server's TLS certificate: an
// unknown authority, a name it does not cover, an expired or otherwise invalid certificate.
func certificateError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verification)
}

// Failure is the last failed operation of an Application as the sync engine classifies it.
type Failure struct {
	Class   Class
	Message string
	// Revision is the revision the failed operation was to (operationState.operation.sync
	// .revision, else syncResult.revision).
	Revision string
}

// LastFailure classifies the last operation recorded in app's status.operationState when it
// ended Failed or Error, with the rules of a sync (classifyFailure), reading nothing but app. It
// returns nil when there is no operation record or the last operation did not fail. An operation
// terminated ("Operation terminated") is permanent, and one the controller's --sync-timeout ended
// is stuck.
func LastFailure(app *unstructured.Unstructured) *Failure {
	opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	if opState == nil {
		return nil
	}
	op := operationOf(opState)
	if op.Phase != "Failed" && op.Phase != "Error" {
		return nil
	}
	f := &Failure{Message: op.Message, Revision: firstNonEmpty(str(opState, "operation", "sync", "revision"), str(opState, "syncResult", "revision"))}
	switch {
	case controllerSyncTimeoutRE.MatchString(op.Message):
		f.Class = ClassStuck
	case retriedSuffixRE.ReplaceAllString(op.Message, "") == operationTerminated:
		f.Class = ClassPermanent
	default:
		fail := classifyFailure(opState)
		f.Class = fail.class
		resources := failingResources(app)
		switch {
		case fail.manifests != "":
			f.Message = "Argo CD could not generate the manifests: " + fail.manifests
		case len(resources) > 0 && resources[0].Status == "SyncFailed":
			f.Message = resources[0].String() + ": " + firstNonEmpty(resources[0].Message, op.Message)
		}
	}
	return f
}
