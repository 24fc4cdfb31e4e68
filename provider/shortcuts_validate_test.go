package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// TestValidateShortcut asks the framework and the validate shortcut to validate the same
// configurations: the shortcut answers the valid ones a plan is made of (no diagnostics, as the
// framework), and leaves every configuration the framework has anything to say about to it.
func TestValidateShortcut(t *testing.T) {
	ctx := context.Background()
	fw, shortcut, typ := frameworkAndShortcuts(t)
	v := applicationValues(typ)
	args, syncOptions, kustomize := v.args, v.syncOptions, v.kustomize
	str, unknown := tfString, tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
	block := func(name string, set map[string]tftypes.Value) tftypes.Value {
		return tfObject(typ.AttributeTypes[name], set)
	}

	for _, tc := range []struct {
		name   string
		config map[string]tftypes.Value
		want   bool // the shortcut answers
	}{
		{name: "required arguments only", config: args, want: true},
		{name: "every option valid", config: with(args, "path", str("overlays/acme"), "health_timeout", str("20m"), "stuck_after", str("1h30m"),
			"window_policy", str("override"), "override_reason", str("incident 42"), "sync_options", syncOptions, "kustomize", kustomize,
			"retry", block("retry", map[string]tftypes.Value{"backoff_duration": str("5s"), "backoff_max_duration": str("3m")}),
			"timeouts", block("timeouts", map[string]tftypes.Value{"create": str("30m")})), want: true},
		{name: "unknown bundle (from a data source)", config: with(args, "bundle", unknown), want: true},
		{name: "unknown duration", config: with(args, "health_timeout", unknown), want: true},
		{name: "bundle by tag", config: with(args, "bundle", str("registry.example/apps/shop:1.0.0"))},
		{name: "name not a DNS label", config: with(args, "name", str("Shop_1"))},
		{name: "bad health_timeout", config: with(args, "health_timeout", str("ten minutes"))},
		{name: "bad window_policy", config: with(args, "window_policy", str("sometimes"))},
		{name: "override without a reason", config: with(args, "window_policy", str("override"), "override_reason", str("  "))},
		{name: "bad duration in a block", config: with(args, "retry", block("retry", map[string]tftypes.Value{"backoff_duration": str("soon")}))},
		{name: "bad timeout", config: with(args, "timeouts", block("timeouts", map[string]tftypes.Value{"delete": str("forever")}))},
		{name: "required argument missing", config: with(args, "namespace", tftypes.NewValue(tftypes.String, nil))},
		{name: "computed attribute configured", config: with(args, "sync_status", str("Synced"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dv, err := tfprotov6.NewDynamicValue(typ, tfObject(typ, tc.config))
			if err != nil {
				t.Fatal(err)
			}
			req := &tfprotov6.ValidateResourceConfigRequest{TypeName: applicationType, Config: &dv}
			got := shortcut.validate(ctx, req)
			want, err := fw.ValidateResourceConfig(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tc.want {
				t.Fatalf("shortcut answered: %v, want %v (the framework's diagnostics: %v)", got != nil, tc.want, summaries(want.Diagnostics))
			}
			if got != nil && (len(want.Diagnostics) > 0 || len(got.Diagnostics) > 0) {
				t.Fatalf("the shortcut answered %v, the framework %v", summaries(got.Diagnostics), summaries(want.Diagnostics))
			}
			if !tc.want && len(want.Diagnostics) == 0 {
				t.Fatal("the framework finds nothing wrong here; the case does not test what it says")
			}
		})
	}
}

// TestValidateShortcutRefusesUnknownSchema checks that the validate shortcut is not built for a
// schema whose validation it does not fully know.
func TestValidateShortcutRefusesUnknownSchema(t *testing.T) {
	for name, s := range map[string]schema.Schema{
		"validators on a bool": {Attributes: map[string]schema.Attribute{"x": schema.BoolAttribute{Optional: true,
			Validators: []validator.Bool{nil}}}},
		"deprecated attribute": {Attributes: map[string]schema.Attribute{"x": schema.StringAttribute{Optional: true, DeprecationMessage: "use y"}}},
		"block validators":     {Blocks: map[string]schema.Block{"b": schema.SingleNestedBlock{Validators: []validator.Object{nil}}}},
		"list block":           {Blocks: map[string]schema.Block{"b": schema.ListNestedBlock{}}},
	} {
		if _, err := newValidation(s); err == nil {
			t.Errorf("%s: newValidation = nil, want an error", name)
		}
	}
	s := schema.Schema{Attributes: map[string]schema.Attribute{"x": schema.StringAttribute{Optional: true,
		Validators: []validator.String{stringvalidator.LengthAtLeast(1)}}}}
	if v, err := newValidation(s); err != nil || len(v.strings) != 1 {
		t.Errorf("newValidation(a string attribute with a validator) = %v, %v; want it to check the validator", v, err)
	}
}

func summaries(ds []*tfprotov6.Diagnostic) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Summary+": "+d.Detail)
	}
	return "[" + strings.Join(s, "; ") + "]"
}
