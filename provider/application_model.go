package provider

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

var durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)

// applicationResourceModel is the ferry_application resource.
type applicationResourceModel struct {
	ID             types.String    `tfsdk:"id"`
	Name           types.String    `tfsdk:"name"`
	Environment    types.String    `tfsdk:"environment"`
	Bundle         types.String    `tfsdk:"bundle"`
	Namespace      types.String    `tfsdk:"namespace"`
	Path           types.String    `tfsdk:"path"`
	Wait           types.Bool      `tfsdk:"wait"`
	HealthTimeout  types.String    `tfsdk:"health_timeout"`
	StuckAfter     types.String    `tfsdk:"stuck_after"`
	WindowPolicy   types.String    `tfsdk:"window_policy"`
	OverrideReason types.String    `tfsdk:"override_reason"`
	AutoSync       types.Bool      `tfsdk:"auto_sync"`
	CascadeDelete  types.Bool      `tfsdk:"cascade_delete"`
	Timeouts       timeouts.Value  `tfsdk:"timeouts"`
	SyncOptions    *syncOptsModel  `tfsdk:"sync_options"`
	Retry          *retryModel     `tfsdk:"retry"`
	Kustomize      *kustomizeModel `tfsdk:"kustomize"`
	Helm           *helmModel      `tfsdk:"helm"`
	SyncStatus     types.String    `tfsdk:"sync_status"`
	HealthStatus   types.String    `tfsdk:"health_status"`
	SyncedRevision types.String    `tfsdk:"synced_revision"`
	LastOperation  types.Object    `tfsdk:"last_operation"`
}

// syncOptsModel is the sync_options block. //< applicationResourceModel
type syncOptsModel struct {
	Prune              types.Bool `tfsdk:"prune"`
	ServerSideApply    types.Bool `tfsdk:"server_side_apply"`
	CreateNamespace    types.Bool `tfsdk:"create_namespace"`
	PruneLast          types.Bool `tfsdk:"prune_last"`
	Replace            types.Bool `tfsdk:"replace"`
	ApplyOutOfSyncOnly types.Bool `tfsdk:"apply_out_of_sync_only"`
}

// retryModel is the retry block. //< applicationResourceModel
type retryModel struct {
	Limit              types.Int64  `tfsdk:"limit"`
	BackoffDuration    types.String `tfsdk:"backoff_duration"`
	BackoffFactor      types.Int64  `tfsdk:"backoff_factor"`
	BackoffMaxDuration types.String `tfsdk:"backoff_max_duration"`
}

// kustomizeModel is the kustomize block. //< applicationResourceModel
type kustomizeModel struct {
	NamePrefix   types.String `tfsdk:"name_prefix"`
	NameSuffix   types.String `tfsdk:"name_suffix"`
	Images       types.List   `tfsdk:"images"`
	CommonLabels types.Map    `tfsdk:"common_labels"`
	Patches      types.List   `tfsdk:"patches"`
}

// helmModel is the helm block. //< applicationResourceModel
type helmModel struct {
	Values types.String `tfsdk:"values"`
}

var syncOptionFlags = []struct {
	get    func(*syncOptsModel) *types.Bool
	option string
}{
	{func(s *syncOptsModel) *types.Bool { return &s.ServerSideApply }, argocd.SyncOptionServerSideApply},
	{func(s *syncOptsModel) *types.Bool { return &s.CreateNamespace }, argocd.SyncOptionCreateNamespace},
	{func(s *syncOptsModel) *types.Bool { return &s.PruneLast }, argocd.SyncOptionPruneLast},
	{func(s *syncOptsModel) *types.Bool { return &s.Replace }, argocd.SyncOptionReplace},
	{func(s *syncOptsModel) *types.Bool { return &s.ApplyOutOfSyncOnly }, argocd.SyncOptionApplyOutOfSyncOnly},
}

// engineInput converts the plan into the engine's App and options; the destination server comes
// from the environment's project.
func (m *applicationResourceModel) engineInput(ctx context.Context, c *argocd.Client, diags *diag.Diagnostics) (argocd.App, argocd.SyncOptions, bool) {
	repoURL, digest, err := pinnedBundle(m.Bundle.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("bundle"), "Bundle Not Pinned By Digest", err.Error())
		return argocd.App{}, argocd.SyncOptions{}, false
	}
	server, err := c.ProjectServer(ctx, m.Environment.ValueString(), m.Namespace.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("environment"), "Unknown Environment", err.Error()+"\n\nSet environment to ferry_environment.X.project and namespace to one of its namespaces.")
		return argocd.App{}, argocd.SyncOptions{}, false
	}
	a := argocd.App{
		Name: m.Name.ValueString(), Project: m.Environment.ValueString(), RepoURL: repoURL, Digest: digest,
		Path: m.Path.ValueString(), Server: server, Namespace: m.Namespace.ValueString(),
		AutoSync: m.AutoSync.ValueBool(), CascadeDelete: m.CascadeDelete.ValueBool(),
	}
	if m.WindowPolicy.ValueString() == string(argocd.WindowOverride) {
		a.OverrideReason = m.OverrideReason.ValueString()
	}
	if s := m.SyncOptions; s != nil {
		a.Prune = s.Prune.ValueBool()
		for _, f := range syncOptionFlags {
			if f.get(s).ValueBool() {
				a.SyncOptions = append(a.SyncOptions, f.option)
			}
		}
	}
	if r := m.Retry; r != nil {
		a.Retry = &argocd.Retry{Limit: r.Limit.ValueInt64(), BackoffDuration: r.BackoffDuration.ValueString(), BackoffFactor: r.BackoffFactor.ValueInt64(), BackoffMax: r.BackoffMaxDuration.ValueString()}
	}
	if k := m.Kustomize; k != nil {
		a.Kustomize = &argocd.Kustomize{NamePrefix: k.NamePrefix.ValueString(), NameSuffix: k.NameSuffix.ValueString()}
		diags.Append(k.Images.ElementsAs(ctx, &a.Kustomize.Images, true)...)
		diags.Append(k.CommonLabels.ElementsAs(ctx, &a.Kustomize.CommonLabels, true)...)
		var patches []string
		diags.Append(k.Patches.ElementsAs(ctx, &patches, true)...)
		for _, p := range patches {
			a.Kustomize.Patches = append(a.Kustomize.Patches, argocd.KustomizePatch{Patch: p})
		}
	}
	if h := m.Helm; h != nil && !h.Values.IsNull() {
		a.Helm = &argocd.Helm{Values: h.Values.ValueString()}
	}
	opts := argocd.SyncOptions{
		WindowPolicy: argocd.WindowPolicy(m.WindowPolicy.ValueString()), OverrideReason: m.OverrideReason.ValueString(), RunID: runID(),
	}
	opts.HealthTimeout, _ = time.ParseDuration(m.HealthTimeout.ValueString())
	opts.StuckAfter, _ = time.ParseDuration(m.StuckAfter.ValueString())
	return a, opts, !diags.HasError()
}

// fromStatus stores the observed sync state.
func (m *applicationResourceModel) fromStatus(s argocd.Status) {
	m.SyncStatus = types.StringValue(s.SyncStatus)
	m.HealthStatus = types.StringValue(s.HealthStatus)
	m.SyncedRevision = types.StringValue(s.Revision)
	op := argocd.Operation{}
	if s.LastOperation != nil {
		op = *s.LastOperation
	}
	m.LastOperation = types.ObjectValueMust(lastOperationAttrTypes, map[string]attr.Value{
		"phase": types.StringValue(op.Phase), "message": types.StringValue(op.Message),
		"started": types.StringValue(op.StartedAt), "finished": types.StringValue(op.FinishedAt),
		"retry_count": types.Int64Value(op.RetryCount), "request_id": types.StringValue(op.RequestID),
	})
}

// fromLive refreshes the model from the live Application; on import it also fills the arguments
// Argo CD does not store with their defaults, so the imported state plans empty.
func (m *applicationResourceModel) fromLive(ctx context.Context, a argocd.App, s argocd.Status, diags *diag.Diagnostics) {
	m.ID = types.StringValue(a.Name)
	m.Name = types.StringValue(a.Name)
	m.Environment = types.StringValue(a.Project)
	m.Bundle = types.StringValue(strings.TrimPrefix(a.RepoURL, "oci://") + "@" + a.Digest)
	m.Namespace = types.StringValue(a.Namespace)
	m.Path = types.StringValue(a.Path)
	m.AutoSync = types.BoolValue(a.AutoSync)
	m.CascadeDelete = types.BoolValue(a.CascadeDelete)
	if m.Wait.IsNull() {
		m.Wait = types.BoolValue(true)
	}
	if m.HealthTimeout.IsNull() {
		m.HealthTimeout = types.StringValue(defaultHealthTimeout)
	}
	if m.StuckAfter.IsNull() {
		m.StuckAfter = types.StringValue(defaultStuckAfter)
	}
	if m.WindowPolicy.IsNull() {
		m.WindowPolicy = types.StringValue(defaultWindowPolicy)
	}
	if m.Timeouts.Object.IsNull() {
		m.Timeouts = timeouts.Value{Object: types.ObjectNull(m.Timeouts.Object.AttributeTypes(ctx))}
	}
	opts := map[string]bool{}
	for _, o := range a.SyncOptions {
		opts[o] = true
	}
	if m.SyncOptions != nil || len(a.SyncOptions) > 0 || a.Prune {
		prior := m.SyncOptions
		if prior == nil {
			prior = &syncOptsModel{}
		}
		so := &syncOptsModel{Prune: keepNullBool(prior.Prune, a.Prune)}
		for _, f := range syncOptionFlags {
			*f.get(so) = keepNullBool(*f.get(prior), opts[f.option])
		}
		m.SyncOptions = so
	}
	if a.Retry != nil {
		prior := m.Retry
		if prior == nil {
			prior = &retryModel{Limit: types.Int64Null(), BackoffFactor: types.Int64Null()}
		}
		m.Retry = &retryModel{Limit: types.Int64Value(a.Retry.Limit), BackoffDuration: keepNullString(prior.BackoffDuration, a.Retry.BackoffDuration),
			BackoffFactor: keepNullInt(prior.BackoffFactor, a.Retry.BackoffFactor), BackoffMaxDuration: keepNullString(prior.BackoffMaxDuration, a.Retry.BackoffMax)}
	} else {
		m.Retry = nil
	}
	if k := a.Kustomize; k != nil {
		prior := m.Kustomize
		if prior == nil {
			prior = &kustomizeModel{Images: types.ListNull(types.StringType), CommonLabels: types.MapNull(types.StringType), Patches: types.ListNull(types.StringType)}
		}
		km := &kustomizeModel{NamePrefix: keepNullString(prior.NamePrefix, k.NamePrefix), NameSuffix: keepNullString(prior.NameSuffix, k.NameSuffix),
			Images: prior.Images, CommonLabels: prior.CommonLabels, Patches: prior.Patches}
		var d diag.Diagnostics
		if len(k.Images) > 0 || !prior.Images.IsNull() {
			km.Images, d = types.ListValueFrom(ctx, types.StringType, nonNil(k.Images))
			diags.Append(d...)
		}
		if len(k.CommonLabels) > 0 || !prior.CommonLabels.IsNull() {
			km.CommonLabels, d = types.MapValueFrom(ctx, types.StringType, k.CommonLabels)
			diags.Append(d...)
		}
		var patches []string
		for _, p := range k.Patches {
			patches = append(patches, p.Patch)
		}
		if len(patches) > 0 || !prior.Patches.IsNull() {
			km.Patches, d = types.ListValueFrom(ctx, types.StringType, nonNil(patches))
			diags.Append(d...)
		}
		m.Kustomize = km
	} else {
		m.Kustomize = nil
	}
	if a.Helm != nil {
		m.Helm = &helmModel{Values: types.StringValue(a.Helm.Values)}
	} else {
		m.Helm = nil
	}
	if a.OverrideReason == "" && s.OverrideReason != "" && m.OverrideReason.IsNull() {
		m.OverrideReason = types.StringNull()
	}
	m.fromStatus(s)
}

func keepNullInt(prior types.Int64, live int64) types.Int64 {
	if live == 0 && (prior.IsNull() || prior.IsUnknown()) {
		return types.Int64Null()
	}
	return types.Int64Value(live)
}
