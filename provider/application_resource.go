package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

var (
	_ resource.Resource                   = (*applicationResource)(nil)
	_ resource.ResourceWithConfigure      = (*applicationResource)(nil)
	_ resource.ResourceWithImportState    = (*applicationResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*applicationResource)(nil)
	_ resource.ResourceWithValidateConfig = (*applicationResource)(nil)
)

// NewApplicationResource returns the ferry_application resource.
func NewApplicationResource() resource.Resource { return &applicationResource{} }

type applicationResource struct{ data *providerData }

// Defaults of the application resource: the sync engine's (argocd.DefaultSyncOptions).
var (
	defaultTimeout       = argocd.DefaultTimeout
	defaultHealthTimeout = argocd.ShortDuration(argocd.DefaultHealthTimeout)
	defaultStuckAfter    = argocd.ShortDuration(argocd.DefaultStuckAfter)
	defaultWindowPolicy  = string(argocd.DefaultWindowPolicy)
)

var lastOperationAttrTypes = map[string]attr.Type{
	"phase": types.StringType, "message": types.StringType, "started": types.StringType, "finished": types.StringType,
	"retry_count": types.Int64Type, "request_id": types.StringType,
}

func (r *applicationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_application"
}

func (r *applicationResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	durationValidator := stringvalidator.RegexMatches(durationRE, "must be a Go duration such as 90s, 15m or 1h30m")
	resp.Schema = schema.Schema{
		MarkdownDescription: "An Argo CD Application pinned to a bundle digest. On create and update ferry applies the Application " +
			"(server-side apply), requests a sync through the `operation` field exactly as Argo CD's API server would (never " +
			"overwriting a running operation), and waits until the application is Synced at exactly the bundle digest and " +
			"Healthy. Every other outcome is an error that names its class: conflict, transient, permanent, window, approval, " +
			"stuck or timeout. Deployment windows of the environment are checked before the sync and while waiting.",
		Attributes: map[string]schema.Attribute{
			// Required
			"name": schema.StringAttribute{Required: true, MarkdownDescription: "Application name (a DNS label).",
				Validators:    []validator.String{stringvalidator.RegexMatches(dnsLabel, "must be a DNS label")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"environment": schema.StringAttribute{Required: true, MarkdownDescription: "The environment's project: `ferry_environment.X.project`."},
			"bundle": schema.StringAttribute{Required: true,
				MarkdownDescription: "The digest-pinned bundle, `host/repo@sha256:…`: use `data.ferry_bundle.X.pinned_reference`. A tag is refused."},
			"namespace": schema.StringAttribute{Required: true, MarkdownDescription: "Destination namespace (one of the environment's namespaces)."},
			// Optional
			"path": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("."),
				MarkdownDescription: "Path inside the manifests layer. Default `.`."},
			"wait": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Wait until Synced at the digest and Healthy. Default `true`. With `false` the apply returns once the sync is requested, and drift is planned only once that sync has settled."},
			"health_timeout": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHealthTimeout),
				Validators:          []validator.String{durationValidator},
				MarkdownDescription: "How long the application may take to become Healthy after the operation. Default `" + defaultHealthTimeout + "` (past Kubernetes' 10-minute progress deadline)."},
			"stuck_after": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultStuckAfter),
				Validators:          []validator.String{durationValidator},
				MarkdownDescription: "An operation showing the same message this long is terminated and reported stuck. Default `" + defaultStuckAfter + "`."},
			"window_policy": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultWindowPolicy),
				Validators: []validator.String{stringvalidator.OneOf(argocd.WindowPolicies()...)},
				MarkdownDescription: fmt.Sprintf("When the deployment window is closed: `%s` (error with the next opening), `%s` (wait within the timeout) or "+
					"`%s` (deploy anyway through the environment's override project; needs `override_reason`). Default `%s`.",
					argocd.WindowFail, argocd.WindowWait, argocd.WindowOverride, defaultWindowPolicy)},
			"override_reason": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Why an override may ignore the window; recorded with the caller and the window overridden in the operation info, " +
					"in the Application's `ferry.dev/last-override` annotation (kept by later applies) and as a `FerryWindowOverride` Event."},
			"auto_sync": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Enable Argo CD's automated sync and wait for it to reach the digest instead of starting an operation. Default `false`."},
			"cascade_delete": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Destroy deletes what the application deployed (Argo CD's resources finalizer). Default `true`."},
			// Computed
			"id":              schema.StringAttribute{Computed: true, MarkdownDescription: "The application name.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"sync_status":     schema.StringAttribute{Computed: true, MarkdownDescription: "Argo CD sync status."},
			"health_status":   schema.StringAttribute{Computed: true, MarkdownDescription: "Argo CD health status."},
			"synced_revision": schema.StringAttribute{Computed: true, MarkdownDescription: "The revision Argo CD last compared: the bundle digest when in sync."},
			"last_operation": schema.SingleNestedAttribute{Computed: true, MarkdownDescription: "The last operation.",
				Attributes: map[string]schema.Attribute{
					"phase":       schema.StringAttribute{Computed: true, MarkdownDescription: "Phase."},
					"message":     schema.StringAttribute{Computed: true, MarkdownDescription: "Message."},
					"started":     schema.StringAttribute{Computed: true, MarkdownDescription: "Start time."},
					"finished":    schema.StringAttribute{Computed: true, MarkdownDescription: "Finish time."},
					"retry_count": schema.Int64Attribute{Computed: true, MarkdownDescription: "Argo CD retries."},
					"request_id":  schema.StringAttribute{Computed: true, MarkdownDescription: "ferry's request id (in `operation.info`)."},
				}},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true,
				CreateDescription: timeoutDescription("a create", "the whole sync and wait; then ferry terminates its own operation, or withdraws its request if Argo CD never picked it up."),
				UpdateDescription: timeoutDescription("an update", "the whole sync and wait, as for `create`."),
				DeleteDescription: timeoutDescription("a destroy", "terminating a running operation and deleting the Application with what it deployed (`cascade_delete`); it applies once it is in the state, so apply it before the destroy.")}),
			"sync_options": schema.SingleNestedBlock{
				MarkdownDescription: "Sync options, copied into every operation (Argo CD reads them only from there).",
				Attributes: map[string]schema.Attribute{
					"prune":                  schema.BoolAttribute{Optional: true, MarkdownDescription: "Delete resources no longer in the bundle."},
					"server_side_apply":      schema.BoolAttribute{Optional: true, MarkdownDescription: "`ServerSideApply=true`."},
					"create_namespace":       schema.BoolAttribute{Optional: true, MarkdownDescription: "`CreateNamespace=true` (the environment must allow `Namespace` in `cluster_resources`)."},
					"prune_last":             schema.BoolAttribute{Optional: true, MarkdownDescription: "`PruneLast=true`."},
					"replace":                schema.BoolAttribute{Optional: true, MarkdownDescription: "`Replace=true`."},
					"apply_out_of_sync_only": schema.BoolAttribute{Optional: true, MarkdownDescription: "`ApplyOutOfSyncOnly=true`."},
				},
			},
			"retry": schema.SingleNestedBlock{
				MarkdownDescription: "Argo CD's own retry of a failed operation (ferry retries transient failures itself as well).",
				Attributes: map[string]schema.Attribute{
					"limit":                schema.Int64Attribute{Optional: true, MarkdownDescription: "Retries; -1 unlimited."},
					"backoff_duration":     schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator}, MarkdownDescription: "First backoff, e.g. `5s`."},
					"backoff_factor":       schema.Int64Attribute{Optional: true, MarkdownDescription: "Backoff factor."},
					"backoff_max_duration": schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator}, MarkdownDescription: "Maximum backoff, e.g. `3m`."},
				},
			},
			"kustomize": schema.SingleNestedBlock{
				MarkdownDescription: "Per-customer kustomize options passed to Argo CD (the manifests layer holds a kustomize base).",
				Attributes: map[string]schema.Attribute{
					"name_prefix":   schema.StringAttribute{Optional: true, MarkdownDescription: "Name prefix."},
					"name_suffix":   schema.StringAttribute{Optional: true, MarkdownDescription: "Name suffix."},
					"images":        schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Image overrides, `name=repo@digest`."},
					"common_labels": schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Labels added to every resource."},
					"patches": schema.ListAttribute{Optional: true, Sensitive: true, ElementType: types.StringType,
						MarkdownDescription: "Patches (strategic merge or JSON 6902 as YAML). Sensitive, as patches often carry secrets: plans show `(sensitive value)`. Argo CD keeps them in the Application in clear text."},
				},
			},
			"helm": schema.SingleNestedBlock{
				MarkdownDescription: "Helm values passed to Argo CD (the manifests layer holds a chart).",
				Attributes: map[string]schema.Attribute{
					"values": schema.StringAttribute{Optional: true, Sensitive: true,
						MarkdownDescription: "Values YAML. Sensitive, as values often carry secrets: plans show `(sensitive value)`. Argo CD keeps them in the Application in clear text."},
				},
			},
		},
	}
}

// timeoutDescription describes a timeouts attribute with its default, the engine's.
func timeoutDescription(op, what string) string {
	return fmt.Sprintf("How long %s may take, a duration such as `30s` or `1h30m`: %s Default `%s`.", op, what, argocd.ShortDuration(defaultTimeout))
}

func (r *applicationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, "Resource", &resp.Diagnostics)
}

// ValidateConfig refuses a tag-pinned bundle and an override without a reason at plan time.
func (r *applicationResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	// Single attributes rather than the whole model: Terraform validates every resource of a plan,
	// and the framework's struct conversion is most of a large plan's provider time.
	var bundleRef, policy, reason types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("bundle"), &bundleRef)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("window_policy"), &policy)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("override_reason"), &reason)...)
	if resp.Diagnostics.HasError() {
		return
	}
	validateApplication(bundleRef, policy, reason, &resp.Diagnostics)
}

// validateApplication is ValidateConfig's check, shared with the validate shortcut.
func validateApplication(bundleRef, policy, reason types.String, diags *diag.Diagnostics) {
	if !bundleRef.IsUnknown() && !bundleRef.IsNull() {
		if _, _, err := pinnedBundle(bundleRef.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("bundle"), "Bundle Not Pinned By Digest", err.Error())
		}
	}
	if policy.ValueString() == string(argocd.WindowOverride) && !reason.IsUnknown() && strings.TrimSpace(reason.ValueString()) == "" {
		diags.AddAttributeError(path.Root("override_reason"), "Missing Override Reason",
			"window_policy = \"override\" deploys through a closed deployment window; set override_reason to why. It is recorded on the Application and in the operation.")
	}
}

// pinnedBundle returns the oci:// repo URL and digest of a digest-pinned bundle reference.
func pinnedBundle(ref string) (string, string, error) {
	r, err := bundle.ParseReference(ref)
	if err != nil {
		return "", "", fmt.Errorf("%v. Use data.ferry_bundle.X.pinned_reference", err)
	}
	if r.IsLayout() {
		return "", "", fmt.Errorf("%q is an OCI layout; Argo CD needs a registry reference (host/repo@sha256:…)", ref)
	}
	if r.Digest == "" {
		return "", "", fmt.Errorf("%q is pinned by tag; a deployment must pin a digest so every apply deploys the same bytes. Use data.ferry_bundle.X.pinned_reference (%s@sha256:…)", ref, r.Name())
	}
	return r.OCIURL(), r.Digest, nil
}

// ModifyPlan shows drift as an in-place update: when the live application is OutOfSync or at
// another revision, the sync attributes become unknown and the plan says why.
func (r *applicationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	r.checkSignaturePolicy(ctx, req, resp)
	if req.State.Raw.IsNull() || resp.Diagnostics.HasError() {
		return
	}
	// Single attributes rather than whole models (see ValidateConfig).
	var (
		name, planBundle, stateBundle, syncedRevision, syncStatus types.String
		wait                                                      types.Bool
	)
	for _, g := range []struct {
		from interface {
			GetAttribute(context.Context, path.Path, any) diag.Diagnostics
		}
		attr   string
		target any
	}{
		{req.Plan, "name", &name}, {req.Plan, "bundle", &planBundle}, {req.Plan, "wait", &wait},
		{req.State, "bundle", &stateBundle}, {req.State, "synced_revision", &syncedRevision}, {req.State, "sync_status", &syncStatus},
	} {
		resp.Diagnostics.Append(g.from.GetAttribute(ctx, path.Root(g.attr), g.target)...)
	}
	if resp.Diagnostics.HasError() || planBundle.IsUnknown() {
		return
	}
	settling, d := req.Private.GetKey(ctx, privateSettling)
	why := driftReason(planBundle.ValueString(), syncedRevision.ValueString(), syncStatus.ValueString(),
		wait.ValueBool(), !d.HasError() && string(settling) == "true")
	if why == "" {
		return
	}
	resp.Plan.SetAttribute(ctx, path.Root("sync_status"), types.StringUnknown())
	resp.Plan.SetAttribute(ctx, path.Root("health_status"), types.StringUnknown())
	resp.Plan.SetAttribute(ctx, path.Root("synced_revision"), types.StringUnknown())
	resp.Plan.SetAttribute(ctx, path.Root("last_operation"), types.ObjectUnknown(lastOperationAttrTypes))
	if stateBundle.Equal(planBundle) {
		resp.Diagnostics.AddWarning("Application Drifted",
			fmt.Sprintf("Application %s will be synced again: %s.", name.ValueString(), why))
	}
}

// checkSignaturePolicy fails the plan of an application whose bundle changes to a digest its
// environment's signature policy refuses, so that no other resource of the configuration changes
// either; the sync checks it again at apply. An environment created by the same plan has no
// policy in the cluster yet: its applications are checked at apply only.
func (r *applicationResource) checkSignaturePolicy(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var name, env, planBundle, stateBundle types.String
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("environment"), &env)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("bundle"), &planBundle)...)
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("bundle"), &stateBundle)...)
	}
	if resp.Diagnostics.HasError() || env.IsUnknown() || planBundle.IsUnknown() || planBundle.Equal(stateBundle) || r.data == nil {
		return
	}
	repo, digest, err := pinnedBundle(planBundle.ValueString())
	if err != nil {
		return // ValidateConfig reports it
	}
	c := r.client(&resp.Diagnostics)
	if c == nil {
		return
	}
	a := argocd.App{Project: env.ValueString(), RepoURL: repo, Digest: digest}
	// A policy that refuses the digest fails the plan; anything else (the cluster unreachable at
	// plan time) is left to the apply, which checks again before it writes.
	var se *argocd.SyncError
	if err := c.CheckSignaturePolicy(ctx, a, bundle.Verifier(r.data.bundles)); errors.As(err, &se) {
		addSyncError(&resp.Diagnostics, name.ValueString(), err)
	}
}

// driftReason says why the live application needs syncing again, or "" when it does not: the
// revision it is at and its sync status, as the last refresh recorded them, against the planned
// bundle. With wait = false an apply leaves the sync running, so a sync still settling
// (requested, running, or not reconciled since it finished) is not drift: the next plan looks
// again. With wait = true ferry waited for it to settle; one running now is someone else's, and
// the re-sync it plans fails as a conflict that names it rather than hiding it. Shared by
// ModifyPlan and the plan shortcut (shortcuts.go).
func driftReason(planBundle, syncedRevision, syncStatus string, wait, settling bool) string {
	if !wait && settling {
		return ""
	}
	_, digest, err := pinnedBundle(planBundle)
	if err != nil {
		return ""
	}
	switch {
	case syncedRevision != digest:
		return fmt.Sprintf("it is at revision %s, not %s", firstNonEmptyString(syncedRevision, "(none)"), digest)
	case syncStatus != "Synced":
		return "it is " + firstNonEmptyString(syncStatus, "not synced") + " (changed outside Terraform)"
	}
	return ""
}

func firstNonEmptyString(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (r *applicationResource) client(diags *diag.Diagnostics) *argocd.Client {
	return r.data.argocdClient(diags)
}

func (r *applicationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m applicationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := m.Timeouts.Create(ctx, defaultTimeout)
	resp.Diagnostics.Append(d...)
	r.sync(ctx, &m, timeout, &resp.State, resp.Private, &resp.Diagnostics)
}

func (r *applicationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m applicationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := m.Timeouts.Update(ctx, defaultTimeout)
	resp.Diagnostics.Append(d...)
	r.sync(ctx, &m, timeout, &resp.State, resp.Private, &resp.Diagnostics)
}

// privateState is where a response keeps provider-private data (privateSettling).
type privateState interface {
	SetKey(context.Context, string, []byte) diag.Diagnostics
}

// sync runs the engine and stores what it saw, also on failure, so the next plan re-syncs.
func (r *applicationResource) sync(ctx context.Context, m *applicationResourceModel, timeout time.Duration, state interface {
	Set(context.Context, any) diag.Diagnostics
}, private privateState, diags *diag.Diagnostics) {
	c := r.client(diags)
	if c == nil {
		return
	}
	app, opts, ok := m.engineInput(ctx, c, diags)
	if !ok {
		return
	}
	opts.Timeout = timeout
	opts.VerifyBundle = bundle.Verifier(r.data.bundles)
	opts.OnProgress = func(s string) {
		tflog.Info(ctx, s, map[string]any{"application": app.Name})
		if w, ok := strings.CutPrefix(s, "warning: "); ok { // e.g. an interrupted override repaired
			diags.AddWarning("Application Sync Warning", strings.ToUpper(w[:1])+w[1:]+".")
		}
	}
	tflog.Debug(ctx, "Syncing application", map[string]any{"application": app.Name, "digest": app.Digest, "project": app.Project})
	res, err := c.Sync(ctx, app, m.Wait.ValueBool(), opts)
	if res != nil && res.Retries > 0 {
		tflog.Info(ctx, "Synced application after transient retries", map[string]any{"application": app.Name, "retries": res.Retries})
	}
	m.ID = types.StringValue(app.Name)
	if live, gerr := c.GetApplication(ctx, app.Name); gerr == nil {
		m.fromStatus(argocd.StatusOf(live))
		diags.Append(recordSettling(ctx, private, live)...)
	} else {
		m.fromStatus(argocd.Status{})
	}
	if err != nil {
		addSyncError(diags, app.Name, err)
		if errors.Is(err, argocd.ErrNotFound) || isWindowBeforeCreate(err) {
			return
		}
	}
	diags.Append(state.Set(ctx, m)...)
}

// isWindowBeforeCreate reports a window failure, which ferry checks before writing anything.
func isWindowBeforeCreate(err error) bool {
	var se *argocd.SyncError
	return errors.As(err, &se) && se.Class == argocd.ClassWindow && se.RequestID == ""
}

// addSyncError turns an engine error into a diagnostic whose summary names the class.
func addSyncError(diags *diag.Diagnostics, name string, err error) {
	var se *argocd.SyncError
	if errors.As(err, &se) {
		diags.AddError(se.Error(), fmt.Sprintf("Application %s: %s failure.\n\n%s", name, se.Class, se.Detail()))
		return
	}
	diags.AddError("Unable to Sync Application", fmt.Sprintf("Application %s.\n\nOriginal Error: %v", name, err))
}

func (r *applicationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m applicationResourceModel
	resp.Diagnostics.Append(stateToModel(ctx, req.State, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	live := refreshApplication(ctx, r.data, &m, &resp.Diagnostics)
	if live == nil {
		if !resp.Diagnostics.HasError() {
			resp.State.RemoveResource(ctx)
		}
		return
	}
	resp.Diagnostics.Append(modelToState(ctx, &m, &resp.State)...)
	resp.Diagnostics.Append(recordSettling(ctx, resp.Private, live)...)
}

// refreshApplication is Read's work, shared with the read shortcut: it reads the live Application
// of m, updates m from it and returns it; it returns nil when the Application is gone, or with an
// error in diags.
func refreshApplication(ctx context.Context, data *providerData, m *applicationResourceModel, diags *diag.Diagnostics) *unstructured.Unstructured {
	c := data.argocdClient(diags)
	if c == nil {
		return nil
	}
	name := m.Name.ValueString()
	if name == "" {
		name = m.ID.ValueString()
	}
	// Batched: a configuration with many applications of one environment is refreshed from one
	// list of the environment's Applications instead of a GET each (argocd.BatchReader).
	live, err := data.reads.GetApplication(ctx, argocd.ProjectEnvironment(m.Environment.ValueString()), name)
	if err == nil && argocd.InOverrideProject(live) {
		// Read again after the repair: one GET per refresh otherwise.
		repairOverride(ctx, c, name, diags)
		live, err = c.GetApplication(ctx, name)
	}
	if errors.Is(err, argocd.ErrNotFound) {
		return nil
	}
	if err != nil {
		diags.AddError("Unable to Read Application", err.Error())
		return nil
	}
	m.fromLive(ctx, argocd.AppFromLive(live), argocd.StatusOf(live), diags)
	return live
}

// repairOverride moves an Application an interrupted override left in the windowless override
// project back into its own project (refresh runs on every plan and apply), with a warning.
func repairOverride(ctx context.Context, c *argocd.Client, name string, diags *diag.Diagnostics) {
	msg, err := c.RepairOverride(ctx, name)
	switch {
	case err != nil:
		diags.AddWarning("Unable to Check for an Interrupted Override", fmt.Sprintf("Application %s: %v", name, err))
	case msg != "":
		diags.AddWarning("Interrupted Override Repaired", strings.ToUpper(msg[:1])+msg[1:]+".")
	}
}

// privateSettling is the private state key where Read, Create and Update record whether the live
// sync was still settling (argocd.SyncSettling), for ModifyPlan's drift decision.
const privateSettling = "sync_settling"

func recordSettling(ctx context.Context, private privateState, live *unstructured.Unstructured) diag.Diagnostics {
	return private.SetKey(ctx, privateSettling, []byte(strconv.FormatBool(argocd.SyncSettling(live))))
}

func (r *applicationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m applicationResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := r.client(&resp.Diagnostics)
	if c == nil {
		return
	}
	timeout, d := m.Timeouts.Delete(ctx, defaultTimeout)
	resp.Diagnostics.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c.DeleteApplication(ctx, m.Name.ValueString(), m.CascadeDelete.ValueBool())
	var se *argocd.SyncError
	if errors.As(err, &se) {
		addSyncError(&resp.Diagnostics, m.Name.ValueString(), err)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Delete Application", fmt.Sprintf("Deleting %s failed.\n\nWith cascade_delete Argo CD deletes the deployed resources first; check its controller and the resources' finalizers.\n\nOriginal Error: %v", m.Name.ValueString(), err))
	}
}

// ImportState imports an application by name.
func (r *applicationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// runID returns HCP Terraform's run id when running there.
func runID() string { return os.Getenv("TFC_RUN_ID") }
