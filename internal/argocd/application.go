package argocd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// ResourcesFinalizer makes Argo CD delete an Application's resources before the Application.
const ResourcesFinalizer = "resources-finalizer.argocd.argoproj.io"

// AnnotationDeletionApproved on an Application approves the pruning or deletion of its
// Prune=confirm and Delete=confirm resources when it holds an RFC 3339 time at or after the
// operation's start (pruning) or the Application's deletion.
const AnnotationDeletionApproved = "argocd.argoproj.io/deletion-approved"

// Sync options ferry exposes, as Argo CD spells them.
const (
	SyncOptionCreateNamespace    = "CreateNamespace=true"
	SyncOptionServerSideApply    = "ServerSideApply=true"
	SyncOptionPruneLast          = "PruneLast=true"
	SyncOptionReplace            = "Replace=true"
	SyncOptionApplyOutOfSyncOnly = "ApplyOutOfSyncOnly=true"
)

// App is the desired Application.
type App struct {
	Name      string
	Project   string
	RepoURL   string // oci://host/repo
	Digest    string // sha256:…, the targetRevision
	Path      string // default "."
	Server    string // destination server
	Namespace string // destination namespace
	Kustomize *Kustomize
	Helm      *Helm
	// SyncOptions are Argo CD sync options such as SyncOptionCreateNamespace.
	SyncOptions []string
	Prune       bool
	Retry       *Retry
	AutoSync    bool
	// CascadeDelete adds the resources finalizer, so deleting the Application deletes what it
	// deployed.
	CascadeDelete bool
	// OverrideReason, when set, is recorded on the Application as an annotation (while the
	// override runs; AnnotationLastOverride is the durable record).
	OverrideReason string

	// audit is the audit record of the override this App is moved for (set by enterOverride);
	// requestSync adds its caller and window to the operation info.
	audit *OverrideRecord
}

// Kustomize passes customization to Argo CD's kustomize source options.
type Kustomize struct {
	NamePrefix   string
	NameSuffix   string
	Images       []string
	CommonLabels map[string]string
	// Patches are kustomize patches as YAML or JSON documents, each with an optional target.
	Patches []KustomizePatch
}

// KustomizePatch is one kustomize patch.
type KustomizePatch struct {
	Patch  string
	Target map[string]string // group, version, kind, name, namespace, labelSelector, annotationSelector
}

// Helm passes values to Argo CD's helm source options.
type Helm struct {
	Values string
}

// Retry is Argo CD's own retry policy for the operation.
type Retry struct {
	Limit           int64
	BackoffDuration string
	BackoffFactor   int64
	BackoffMax      string
}

func (r *Retry) object() map[string]any {
	if r == nil {
		return nil
	}
	m := map[string]any{"limit": r.Limit}
	b := map[string]any{}
	if r.BackoffDuration != "" {
		b["duration"] = r.BackoffDuration
	}
	if r.BackoffFactor > 0 {
		b["factor"] = r.BackoffFactor
	}
	if r.BackoffMax != "" {
		b["maxDuration"] = r.BackoffMax
	}
	if len(b) > 0 {
		m["backoff"] = b
	}
	return m
}

func (a App) path() string {
	if a.Path == "" {
		return "."
	}
	return a.Path
}

// ProjectEnvironment returns the environment a project belongs to: the project itself, or the
// environment whose override project it is.
func ProjectEnvironment(project string) string { return strings.TrimSuffix(project, overrideSuffix) }

// object builds the applied Application. It never contains operation: a re-apply must never start
// a sync. It carries LabelEnvironment naming its environment — also while an override has moved it
// into the override project — so that everything reading an environment's Applications lists them
// with a label selector, whose cost does not grow with the fleet.
func (a App) object() *unstructured.Unstructured {
	u := newObject("argoproj.io/v1alpha1", "Application", a.Name, map[string]string{LabelEnvironment: ProjectEnvironment(a.Project)})
	if a.CascadeDelete {
		u.SetFinalizers([]string{ResourcesFinalizer})
	}
	if a.OverrideReason != "" {
		u.SetAnnotations(map[string]string{AnnotationOverride: a.OverrideReason})
	}
	source := map[string]any{"repoURL": a.RepoURL, "targetRevision": a.Digest, "path": a.path()}
	if k := a.Kustomize; k != nil {
		km := map[string]any{}
		if k.NamePrefix != "" {
			km["namePrefix"] = k.NamePrefix
		}
		if k.NameSuffix != "" {
			km["nameSuffix"] = k.NameSuffix
		}
		if len(k.Images) > 0 {
			imgs := []any{}
			for _, i := range k.Images {
				imgs = append(imgs, i)
			}
			km["images"] = imgs
		}
		if len(k.CommonLabels) > 0 {
			l := map[string]any{}
			for key, v := range k.CommonLabels {
				l[key] = v
			}
			km["commonLabels"] = l
		}
		if len(k.Patches) > 0 {
			ps := []any{}
			for _, p := range k.Patches {
				pm := map[string]any{"patch": p.Patch}
				if len(p.Target) > 0 {
					t := map[string]any{}
					for key, v := range p.Target {
						t[key] = v
					}
					pm["target"] = t
				}
				ps = append(ps, pm)
			}
			km["patches"] = ps
		}
		source["kustomize"] = km
	}
	if a.Helm != nil && a.Helm.Values != "" {
		source["helm"] = map[string]any{"values": a.Helm.Values}
	}
	policy := map[string]any{}
	if len(a.SyncOptions) > 0 {
		opts := []any{}
		for _, o := range a.SyncOptions {
			opts = append(opts, o)
		}
		policy["syncOptions"] = opts
	}
	if r := a.Retry.object(); r != nil {
		policy["retry"] = r
	}
	if a.AutoSync {
		policy["automated"] = map[string]any{"enabled": true, "prune": a.Prune, "selfHeal": true}
	} else {
		// Argo CD reads prune for a manual sync from the operation; it is kept here (automated
		// off) so the Application records what ferry was asked for.
		policy["automated"] = map[string]any{"enabled": false, "prune": a.Prune}
	}
	u.Object["spec"] = map[string]any{
		"project":     a.Project,
		"source":      source,
		"destination": map[string]any{"server": a.Server, "namespace": a.Namespace},
		"syncPolicy":  policy,
	}
	return u
}

// ApplyApplication writes the Application with server-side apply and returns the live object.
func (c *Client) ApplyApplication(ctx context.Context, a App) (*unstructured.Unstructured, error) {
	return c.apply(ctx, ApplicationGVR, a.object())
}

// GetApplication reads an Application; a missing one is ErrNotFound.
func (c *Client) GetApplication(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	return c.get(ctx, ApplicationGVR, name)
}

// GetProject reads an AppProject; a missing one is ErrNotFound.
func (c *Client) GetProject(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	return c.get(ctx, AppProjectGVR, name)
}

// DeleteApplication deletes an Application and waits until it is gone. With cascade the resources
// finalizer (already on the object) makes Argo CD delete what it deployed first; without it the
// finalizer is removed so the deployed resources stay.
func (c *Client) DeleteApplication(ctx context.Context, name string, cascade bool) error {
	app, err := c.get(ctx, ApplicationGVR, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// Argo CD does not delete an Application while an operation runs: terminate it first.
	if running, _, _ := operationInProgress(app); running {
		if _, err := c.Terminate(ctx, name); err == nil {
			_ = c.watchApp(ctx, name, func(a *unstructured.Unstructured) (bool, error) {
				running, _, _ := operationInProgress(a)
				return !running, nil
			})
		}
		if app, err = c.get(ctx, ApplicationGVR, name); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
	}
	if !cascade && len(app.GetFinalizers()) > 0 {
		var keep []string
		for _, f := range app.GetFinalizers() {
			if !strings.HasPrefix(f, ResourcesFinalizer) {
				keep = append(keep, f)
			}
		}
		app.SetFinalizers(keep)
		if _, err := c.res(ApplicationGVR).Update(ctx, app, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("remove finalizer of application %s: %w", name, err)
		}
	}
	// Background: Argo CD's own finalizer does the cascade (a foreground finalizer would block it).
	policy := metav1.DeletePropagationBackground
	if err := c.del(ctx, ApplicationGVR, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		return err
	}
	return c.waitGone(ctx, name)
}

func (c *Client) waitGone(ctx context.Context, name string) error {
	for {
		obj, err := c.res(ApplicationGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		if err := c.deletionApproval(obj); err != nil {
			return err
		}
		w, err := c.res(ApplicationGVR).Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: obj.GetResourceVersion(),
		})
		if err != nil {
			return err
		}
		gone := false
		var blocked *SyncError // a typed nil must not become a non-nil error
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				gone = true
				break
			}
			if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				if blocked = c.deletionApproval(u); blocked != nil {
					break
				}
			}
		}
		w.Stop()
		if gone {
			return nil
		}
		if blocked != nil {
			return blocked
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("application %s still exists (deletion waits for Argo CD to delete its resources): %w", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deletionApproval returns the approval class when Argo CD's cascade deletion of app waits for a
// confirmation: a resource marked Delete=confirm or Prune=confirm (status.resources[]
// .requiresDeletionConfirmation) and no deletion-approved annotation at or after the deletion
// (the controller's finalizer then does nothing until it is approved).
func (c *Client) deletionApproval(app *unstructured.Unstructured) *SyncError {
	deleted := app.GetDeletionTimestamp()
	if deleted == nil || !slices.ContainsFunc(app.GetFinalizers(), func(f string) bool { return strings.HasPrefix(f, ResourcesFinalizer) }) {
		return nil
	}
	if v := app.GetAnnotations()[AnnotationDeletionApproved]; v != "" {
		if at, err := time.Parse(time.RFC3339, v); err == nil && !at.Before(deleted.Time) {
			return nil
		}
	}
	var waiting []Resource
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		if m, ok := r.(map[string]any); ok && m["requiresDeletionConfirmation"] == true {
			waiting = append(waiting, resourceOf(m, "RequiresDeletionConfirmation"))
		}
	}
	if len(waiting) == 0 {
		return nil
	}
	return &SyncError{Class: ClassApproval, Summary: "Deletion needs approval: Argo CD waits for a deletion confirmation before it deletes the application's resources",
		Resources: waiting,
		Advice: fmt.Sprintf("Approve with: kubectl -n %s annotate application %s %s=%s, then run the deletion again; "+
			"or, to keep the resources, set cascade_delete = false on the ferry_application and destroy again.",
			c.namespace, app.GetName(), AnnotationDeletionApproved, time.Now().UTC().Format(time.RFC3339))}
}

// AppFromLive returns the App an existing Application describes, so callers outside Terraform can
// sync it with the same engine.
func AppFromLive(app *unstructured.Unstructured) App {
	a := App{
		Name:      app.GetName(),
		Project:   str(app.Object, "spec", "project"),
		RepoURL:   str(app.Object, "spec", "source", "repoURL"),
		Digest:    str(app.Object, "spec", "source", "targetRevision"),
		Path:      str(app.Object, "spec", "source", "path"),
		Server:    str(app.Object, "spec", "destination", "server"),
		Namespace: str(app.Object, "spec", "destination", "namespace"),
	}
	a.SyncOptions, _, _ = unstructured.NestedStringSlice(app.Object, "spec", "syncPolicy", "syncOptions")
	a.Prune, _, _ = unstructured.NestedBool(app.Object, "spec", "syncPolicy", "automated", "prune")
	if r, ok, _ := unstructured.NestedMap(app.Object, "spec", "syncPolicy", "retry"); ok {
		a.Retry = &Retry{BackoffDuration: str(r, "backoff", "duration"), BackoffMax: str(r, "backoff", "maxDuration")}
		a.Retry.Limit, _, _ = unstructured.NestedInt64(r, "limit")
		a.Retry.BackoffFactor, _, _ = unstructured.NestedInt64(r, "backoff", "factor")
	}
	a.AutoSync = StatusOf(app).AutoSync
	for _, f := range app.GetFinalizers() {
		if strings.HasPrefix(f, ResourcesFinalizer) {
			a.CascadeDelete = true
		}
	}
	if k, ok, _ := unstructured.NestedMap(app.Object, "spec", "source", "kustomize"); ok {
		a.Kustomize = &Kustomize{NamePrefix: str(k, "namePrefix"), NameSuffix: str(k, "nameSuffix")}
		a.Kustomize.Images, _, _ = unstructured.NestedStringSlice(k, "images")
		a.Kustomize.CommonLabels, _, _ = unstructured.NestedStringMap(k, "commonLabels")
		ps, _, _ := unstructured.NestedSlice(k, "patches")
		for _, p := range ps {
			if m, ok := p.(map[string]any); ok {
				kp := KustomizePatch{Patch: str(m, "patch")}
				kp.Target, _, _ = unstructured.NestedStringMap(m, "target")
				a.Kustomize.Patches = append(a.Kustomize.Patches, kp)
			}
		}
	}
	if v := str(app.Object, "spec", "source", "helm", "values"); v != "" {
		a.Helm = &Helm{Values: v}
	}
	return a
}
