package provider

import (
	"context"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// environment converts the planned model to the engine's Environment, with the write-only secrets
// of the configuration cfg.
func (m *environmentResourceModel) environment(ctx context.Context, cfg *environmentResourceModel, diags *diag.Diagnostics) argocd.Environment {
	e := argocd.Environment{Name: m.Name.ValueString(), Description: m.Description.ValueString(), Frozen: m.Frozen.ValueBool()}
	diags.Append(m.Labels.ElementsAs(ctx, &e.Labels, true)...)
	diags.Append(m.Namespaces.ElementsAs(ctx, &e.Namespaces, true)...)
	if len(e.Namespaces) == 0 {
		e.Namespaces = []string{e.Name}
		m.Namespaces, _ = types.ListValueFrom(ctx, types.StringType, e.Namespaces)
	}
	diags.Append(m.SourceRepositories.ElementsAs(ctx, &e.SourceRepositories, true)...)
	diags.Append(m.ClusterResources.ElementsAs(ctx, &e.ClusterResources, true)...)
	if c := m.Cluster; c != nil {
		var wo types.String
		if cfg.Cluster != nil {
			wo = cfg.Cluster.BearerTokenWO
		}
		e.Cluster = argocd.Cluster{
			InCluster: c.InCluster.ValueBool(), Server: c.Server.ValueString(), Name: c.Name.ValueString(),
			BearerToken: bearerTokenSecret.value(c.BearerToken, wo), CAData: c.CAData.ValueString(), Insecure: c.Insecure.ValueBool(),
		}
	}
	if r := m.RegistryCredentials; r != nil {
		url := r.URL.ValueString()
		if url == "" && len(e.SourceRepositories) > 0 {
			url = strings.TrimSuffix(e.SourceRepositories[0], "*")
		}
		var wo types.String
		if cfg.RegistryCredentials != nil {
			wo = cfg.RegistryCredentials.PasswordWO
		}
		e.RegistryCredentials = &argocd.RegistryCredentials{URL: url, Username: r.Username.ValueString(),
			Password: passwordSecret.value(r.Password, wo), PlainHTTP: r.PlainHTTP.ValueBool()}
	}
	e.Windows, _ = windowSpecs(ctx, m.Windows)
	if sp := m.SignaturePolicy; sp != nil {
		diags.Append(sp.PublicKeys.ElementsAs(ctx, &e.TrustedKeys, true)...)
		diags.Append(sp.RequiredAttestations.ElementsAs(ctx, &e.RequiredAttestations, true)...)
	}
	return e
}

// keepNullString returns live, except that an empty live value stays null when prior was null, so
// optional attributes left out of the configuration never show a diff.
func keepNullString(prior types.String, live string) types.String {
	if live == "" && (prior.IsNull() || prior.IsUnknown()) {
		return types.StringNull()
	}
	return types.StringValue(live)
}

func keepNullBool(prior types.Bool, live bool) types.Bool {
	if !live && (prior.IsNull() || prior.IsUnknown()) {
		return types.BoolNull()
	}
	return types.BoolValue(live)
}

// fromLive refreshes the model from the cluster, so drift shows in the plan: a window edited by
// hand, a changed destination, a deleted Secret.
func (m *environmentResourceModel) fromLive(ctx context.Context, live *argocd.LiveEnvironment, diags *diag.Diagnostics) {
	e := live.Environment
	var d diag.Diagnostics
	m.ID = types.StringValue(e.Name)
	m.Name = types.StringValue(e.Name)
	m.Project = types.StringValue(e.Name)
	m.Description = types.StringValue(e.Description)
	if len(e.Labels) == 0 && m.Labels.IsNull() {
		m.Labels = types.MapNull(types.StringType)
	} else {
		m.Labels, d = types.MapValueFrom(ctx, types.StringType, e.Labels)
		diags.Append(d...)
	}
	m.Namespaces, d = types.ListValueFrom(ctx, types.StringType, nonNil(e.Namespaces))
	diags.Append(d...)
	m.SourceRepositories, d = types.ListValueFrom(ctx, types.StringType, nonNil(e.SourceRepositories))
	diags.Append(d...)
	m.ClusterResources, d = types.ListValueFrom(ctx, types.StringType, nonNil(e.ClusterResources))
	diags.Append(d...)
	m.Frozen = types.BoolValue(e.Frozen)
	if len(e.TrustedKeys) == 0 && len(e.RequiredAttestations) == 0 {
		m.SignaturePolicy = nil
	} else {
		keys, d := types.MapValueFrom(ctx, types.StringType, e.TrustedKeys)
		diags.Append(d...)
		required := types.ListNull(types.StringType)
		if len(e.RequiredAttestations) > 0 {
			required, d = types.ListValueFrom(ctx, types.StringType, e.RequiredAttestations)
			diags.Append(d...)
		}
		m.SignaturePolicy = &signaturePolicyModel{PublicKeys: keys, RequiredAttestations: required}
	}

	prior := m.Cluster
	if prior == nil {
		prior = &clusterModel{}
	}
	c := &clusterModel{
		InCluster:            keepNullBool(prior.InCluster, e.Cluster.InCluster),
		BearerToken:          prior.BearerToken,
		BearerTokenWOVersion: prior.BearerTokenWOVersion,
	}
	liveToken := e.Cluster.BearerToken
	if e.Cluster.InCluster {
		liveToken = prior.BearerToken.ValueString() // no cluster Secret, nothing to compare
	}
	bearerTokenSecret.refresh(&c.BearerToken, &c.BearerTokenWO, &c.BearerTokenWOVersion, liveToken)
	if !e.Cluster.InCluster {
		server := e.Cluster.Server
		if live.ClusterSecret == "" {
			server = "" // the cluster Secret was deleted: show a change so apply restores it
		}
		c.Server = keepNullString(prior.Server, server)
		name := e.Cluster.Name
		if name == e.Name && prior.Name.IsNull() {
			name = ""
		}
		c.Name = keepNullString(prior.Name, name)
		c.CAData = keepNullString(prior.CAData, e.Cluster.CAData)
		c.Insecure = keepNullBool(prior.Insecure, e.Cluster.Insecure)
	} else {
		c.Server, c.Name, c.CAData, c.Insecure = types.StringNull(), types.StringNull(), types.StringNull(), types.BoolNull()
	}
	m.Cluster = c
	m.ClusterSecret = types.StringValue(live.ClusterSecret)

	if r := e.RegistryCredentials; r != nil {
		priorR := m.RegistryCredentials
		if priorR == nil {
			priorR = &registryCredentialsModel{}
		}
		url := r.URL
		if priorR.URL.IsNull() && len(e.SourceRepositories) > 0 && url == strings.TrimSuffix(e.SourceRepositories[0], "*") {
			url = ""
		}
		rc := &registryCredentialsModel{
			URL: keepNullString(priorR.URL, url), Username: keepNullString(priorR.Username, r.Username),
			Password: priorR.Password, PasswordWOVersion: priorR.PasswordWOVersion, PlainHTTP: keepNullBool(priorR.PlainHTTP, r.PlainHTTP),
		}
		passwordSecret.refresh(&rc.Password, &rc.PasswordWO, &rc.PasswordWOVersion, r.Password)
		m.RegistryCredentials = rc
	} else {
		m.RegistryCredentials = nil
	}
	m.RepositorySecret = types.StringValue(live.RepositorySecret)

	priorWs, _ := windowModels(ctx, m.Windows)
	ws := []windowModel{}
	for i, w := range e.Windows {
		var p windowModel
		if i < len(priorWs) {
			p = priorWs[i]
		} else {
			p = windowModel{TimeZone: types.StringNull(), ManualSync: types.BoolNull(), Description: types.StringNull()}
		}
		ws = append(ws, windowModelOf(p, w))
	}
	m.Windows, d = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: windowAttrTypes}, ws)
	diags.Append(d...)
}

func windowModelOf(prior windowModel, w window.Spec) windowModel {
	return windowModel{
		Kind: types.StringValue(w.Kind), Schedule: types.StringValue(w.Schedule), Duration: types.StringValue(w.Duration),
		TimeZone: keepNullString(prior.TimeZone, w.TimeZone), ManualSync: keepNullBool(prior.ManualSync, w.ManualSync),
		Description: keepNullString(prior.Description, w.Description),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
