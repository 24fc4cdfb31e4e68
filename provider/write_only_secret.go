package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// writeOnlySecret is a secret argument of a block, given as three attributes, the same way for
// every secret ferry writes into Argo CD's Secrets (cluster.bearer_token,
// registry_credentials.password):
//   - NAME: Sensitive and stored in state, for Terraform before 1.11;
//   - NAME_wo: write-only (Terraform ≥ 1.11), never in plan or state (the framework nulls it);
//   - NAME_wo_version: Terraform does not compare write-only values, so changing this number is
//     what plans an update that writes NAME_wo again.
//
// NAME and NAME_wo conflict. A refresh never reads the secret back into state (refresh).
type writeOnlySecret struct {
	name string // NAME
	what string // the secret, for the descriptions: "Bearer token Argo CD uses"
}

var (
	bearerTokenSecret = writeOnlySecret{name: "bearer_token", what: "Bearer token Argo CD uses"}
	passwordSecret    = writeOnlySecret{name: "password", what: "Password or token Argo CD uses"}
)

// secretDrift is what state shows for NAME when the live Secret holds another value, so the next
// plan writes it again.
const secretDrift = "(changed outside Terraform)"

// attributes returns the schema of NAME, NAME_wo and NAME_wo_version.
func (s writeOnlySecret) attributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		s.name: schema.StringAttribute{Optional: true, Sensitive: true,
			MarkdownDescription: fmt.Sprintf("%s; stored in state. Prefer `%s_wo`.", s.what, s.name)},
		s.name + "_wo": schema.StringAttribute{Optional: true, Sensitive: true, WriteOnly: true,
			MarkdownDescription: fmt.Sprintf("%s, write-only (Terraform ≥ 1.11): never stored in state. Change `%s_wo_version` to write a new value. Conflicts with `%s`.", s.what, s.name, s.name)},
		s.name + "_wo_version": schema.Int64Attribute{Optional: true,
			MarkdownDescription: fmt.Sprintf("Any number; changing it writes `%s_wo` again.", s.name)},
	}
}

// validate reports NAME and NAME_wo both set in the block at block.
func (s writeOnlySecret) validate(diags *diag.Diagnostics, block path.Path, stored, wo types.String) {
	if !stored.IsNull() && !wo.IsNull() {
		diags.AddAttributeError(block.AtName(s.name+"_wo"), fmt.Sprintf("Conflicting %s and %s_wo", s.name, s.name),
			fmt.Sprintf("Set %[1]s or %[1]s_wo, not both. %[1]s_wo (Terraform ≥ 1.11) keeps the secret out of state.", s.name))
	}
}

// set reports whether the configuration sets the secret in either form; known is false while
// either is unknown.
func (s writeOnlySecret) set(stored, wo types.String) (set, known bool) {
	if stored.IsUnknown() || wo.IsUnknown() {
		return false, false
	}
	return !stored.IsNull() || !wo.IsNull(), true
}

// value returns the secret to write: NAME_wo from the configuration when set, else NAME from the
// plan.
func (s writeOnlySecret) value(planned, configWO types.String) string {
	if !configWO.IsNull() {
		return configWO.ValueString()
	}
	return planned.ValueString()
}

// refresh sets what a refresh stores for the three attributes from their prior state and the
// secret the live Secret holds, which is never stored: NAME stays null when the configuration left
// it null (NAME_wo or no secret), keeps its value while the live Secret holds it and becomes
// secretDrift when it holds another; NAME_wo is null; NAME_wo_version keeps its value.
func (s writeOnlySecret) refresh(stored, wo *types.String, version *types.Int64, live string) {
	switch {
	case stored.IsNull() || stored.IsUnknown():
		*stored = types.StringNull()
	case stored.ValueString() != live:
		*stored = types.StringValue(secretDrift)
	}
	*wo = types.StringNull()
	if version.IsUnknown() {
		*version = types.Int64Null()
	}
}
