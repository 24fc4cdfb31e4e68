package argocd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestObserveTerminated: "Operation terminated", with or without Argo CD's retried suffix, is
// someone else's termination, unless the operation said before that the controller's sync
// timeout was terminating it.
func TestObserveTerminated(t *testing.T) {
	app := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "shop"}}}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	observe := func(f *follower, phase, msg string) error {
		_, _, err := f.observeOp(context.Background(), app, map[string]any{"phase": phase, "message": msg}, now)
		return err
	}
	class := func(err error) (Class, string) {
		var se *SyncError
		if !errors.As(err, &se) {
			t.Fatalf("observeOp() error = %v, want a *SyncError", err)
		}
		return se.Class, se.Summary
	}
	newFollower := func() *follower {
		return &follower{c: &Client{}, a: App{Name: "shop", Project: "acme"}, opts: SyncOptions{StuckAfter: time.Minute}}
	}
	for _, msg := range []string{"Operation terminated", "Operation terminated (retried 2 times)."} {
		if c, s := class(observe(newFollower(), "Failed", msg)); c != ClassPermanent || !strings.Contains(s, "terminated by someone else") {
			t.Errorf("%q: class %s, summary %q; want permanent, terminated by someone else", msg, c, s)
		}
	}
	f := newFollower()
	for _, msg := range []string{"waiting for healthy state of apps/Deployment/api", "operation is terminating due to timeout"} {
		if err := observe(f, "Running", msg); err != nil {
			t.Fatalf("observeOp(Running %q) = %v", msg, err)
		}
	}
	if c, s := class(observe(f, "Failed", "Operation terminated")); c != ClassStuck || !strings.Contains(s, "controller sync timeout") || !strings.Contains(s, "apps/Deployment/api") {
		t.Errorf("after the sync timeout: class %s, summary %q; want stuck, the controller sync timeout and what it waited for", c, s)
	}
}

// TestObserveManifestsBeforeResources: a failure to generate the manifests is the summary even
// when the live resources of the previous revision are unhealthy.
func TestObserveManifestsBeforeResources(t *testing.T) {
	app := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "shop"}, "status": map[string]any{
		"resources": []any{map[string]any{"kind": "Deployment", "namespace": "acme", "name": "api", "health": map[string]any{"status": "Degraded", "message": "crash"}}}}}}
	f := &follower{c: &Client{}, a: App{Name: "shop", Project: "acme"}, opts: SyncOptions{StuckAfter: time.Minute}}
	msg := "ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = nope: app path does not exist"
	_, _, err := f.observeOp(context.Background(), app, map[string]any{"phase": "Error", "message": msg}, time.Now())
	var se *SyncError
	if !errors.As(err, &se) || se.Class != ClassPermanent || se.Summary != "Sync failed: Argo CD could not generate the manifests: nope: app path does not exist" {
		t.Errorf("observeOp() = %v, want the manifests summary", err)
	}
	if se != nil && len(se.Resources) != 1 {
		t.Errorf("resources = %v, want the degraded Deployment still listed", se.Resources)
	}
}

// TestSyncWindowPreCheckErrors: the deployment window check classifies a failure to read the
// project as an API error, retrying a transient one, and keeps invalid windows permanent.
func TestSyncWindowPreCheckErrors(t *testing.T) {
	project := func(windows ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
			"metadata": map[string]any{"name": "acme", "namespace": "argocd"}, "spec": map[string]any{"syncWindows": windows}}}
	}
	gr := schema.GroupResource{Group: "argoproj.io", Resource: "appprojects"}
	for _, tt := range []struct {
		name    string
		errs    []error // the answers to the project's reads, in turn; then the project
		project *unstructured.Unstructured
		class   Class
		summary string
		reads   int
	}{
		{name: "forbidden", errs: []error{apierrors.NewForbidden(gr, "acme", errors.New("no"))},
			class: ClassPermanent, summary: "Unable to read the environment's project", reads: 1},
		{name: "missing project", project: nil, class: ClassPermanent, summary: "Unable to read the environment's project", reads: 1},
		{name: "unavailable, then forbidden", errs: []error{apierrors.NewServiceUnavailable("later"), apierrors.NewForbidden(gr, "acme", errors.New("no"))},
			class: ClassPermanent, summary: "Unable to read the environment's project", reads: 2},
		{name: "unavailable throughout", errs: []error{apierrors.NewServiceUnavailable("later"), apierrors.NewServiceUnavailable("later"), apierrors.NewServiceUnavailable("later")},
			class: ClassTransient, summary: "Unable to read the environment's project", reads: 3},
		{name: "unsupported glob in a deny window",
			project: project(map[string]any{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": []any{"{shop,api}-*"}}),
			class:   ClassPermanent, summary: "Invalid deployment windows", reads: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
				ApplicationGVR: "ApplicationList", AppProjectGVR: "AppProjectList", SecretGVR: "SecretList"})
			reads := 0
			dyn.PrependReactor("get", "appprojects", func(k8stesting.Action) (bool, runtime.Object, error) {
				reads++
				if reads <= len(tt.errs) {
					return true, nil, tt.errs[reads-1]
				}
				if tt.project == nil {
					return true, nil, apierrors.NewNotFound(gr, "acme")
				}
				return true, tt.project.DeepCopy(), nil
			})
			c := NewFromDynamic(dyn, "argocd")
			_, err := c.Sync(context.Background(), App{Name: "shop", Project: "acme", Digest: "sha256:0"}, false,
				SyncOptions{TransientRetries: 2, RetryBackoff: time.Millisecond})
			var se *SyncError
			if !errors.As(err, &se) || se.Class != tt.class || se.Summary != tt.summary {
				t.Fatalf("Sync() = %v, want class %s, summary %q", err, tt.class, tt.summary)
			}
			if reads != tt.reads {
				t.Errorf("the project was read %d times, want %d", reads, tt.reads)
			}
		})
	}
}

// TestFirstReconcileWaitsOnWatch: while the controller has not reconciled a new Application, the
// sync waits on a watch, not by reading it again and again: the reads of one request do not grow
// with how long a busy controller takes to get to the Application.
func TestFirstReconcileWaitsOnWatch(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		ApplicationGVR: "ApplicationList", AppProjectGVR: "AppProjectList", SecretGVR: "SecretList"})
	apps := dyn.Resource(ApplicationGVR).Namespace("argocd")
	app := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": "shop", "namespace": "argocd"}, "spec": map[string]any{"project": "acme"}}}
	if _, err := apps.Create(context.Background(), app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := NewFromDynamic(dyn, "argocd")
	opts := SyncOptions{PickupTimeout: time.Minute}
	opts.defaults()
	done := make(chan error, 1)
	go func() {
		done <- c.requestSync(context.Background(), App{Name: "shop", Project: "acme", Digest: "sha256:0"}, "rid", opts, "")
	}()

	count := func(verb string) int {
		n := 0
		for _, a := range dyn.Actions() {
			if a.GetVerb() == verb && a.GetResource() == ApplicationGVR {
				n++
			}
		}
		return n
	}
	for count("watch") == 0 {
		select {
		case err := <-done:
			t.Fatalf("requestSync() = %v before the Application was reconciled", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// The controller takes its time (2 s) before its first reconcile.
	time.Sleep(2 * time.Second)
	live, err := apps.Get(context.Background(), "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedField(live.Object, time.Now().UTC().Format(time.RFC3339), "status", "reconciledAt")
	if _, err := apps.Update(context.Background(), live, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("requestSync() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("requestSync() did not see the reconcile on its watch")
	}
	// Read, watch (read, then the watch), read again, write; the test's own two requests aside.
	if gets := count("get") - 1; gets > 3 || count("watch") != 1 {
		t.Errorf("the sync read the Application %d times and watched it %d times while the controller took 2 s; want at most 3 reads and 1 watch", gets, count("watch"))
	}
	got, _ := apps.Get(context.Background(), "shop", metav1.GetOptions{})
	if _, ok := got.Object["operation"]; !ok {
		t.Error("no operation was requested")
	}
}
