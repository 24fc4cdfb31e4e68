package provider

import (
	"context"
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// TestCodec converts ferry_application states to the model and back through the codec and
// through the framework's State.Get and State.Set: both must give the same model and the same
// state.
func TestCodec(t *testing.T) {
	ctx := context.Background()
	cd, err := applicationCodec()
	if err != nil {
		t.Fatal(err)
	}
	sch := applicationSchema()
	typ := cd.typ
	v := applicationValues(typ)
	steady := merged(v.args, v.defaults, v.computed)
	retry := tfObject(typ.AttributeTypes["retry"], map[string]tftypes.Value{
		"limit": tftypes.NewValue(tftypes.Number, 3), "backoff_duration": tfString("5s")})
	helm := tfObject(typ.AttributeTypes["helm"], map[string]tftypes.Value{"values": tfString("replicas: 2\n")})
	timeouts := tfObject(typ.AttributeTypes["timeouts"], map[string]tftypes.Value{"create": tfString("30m")})
	for _, tc := range []struct {
		name  string
		state map[string]tftypes.Value
	}{
		{"imported: name and id only", map[string]tftypes.Value{"name": tfString("shop"), "id": tfString("shop")}},
		{"steady", steady},
		{"every block", with(steady, "sync_options", v.syncOptions, "kustomize", v.kustomize, "retry", retry, "helm", helm, "timeouts", timeouts,
			"override_reason", tfString("incident 42"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := tfsdk.State{Schema: sch, Raw: tfObject(typ, tc.state)}
			var got, want applicationResourceModel
			if err := cd.decode(ctx, state.Raw, &got); err != nil {
				t.Fatal(err)
			}
			if diags := state.Get(ctx, &want); diags.HasError() {
				t.Fatal(diags)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("codec model\n%+v\nframework model\n%+v", got, want)
			}
			raw, err := cd.encode(ctx, &got)
			if err != nil {
				t.Fatal(err)
			}
			set := tfsdk.State{Schema: sch, Raw: tftypes.NewValue(typ, nil)}
			if diags := set.Set(ctx, &want); diags.HasError() {
				t.Fatal(diags)
			}
			if !raw.Equal(set.Raw) {
				diffs, _ := raw.Diff(set.Raw)
				t.Fatalf("codec state differs from the framework's: %v", diffs)
			}
			if !raw.Equal(state.Raw) {
				t.Fatal("the state did not survive decode and encode")
			}
			// What Read does: through stateToModel and modelToState.
			var m applicationResourceModel
			if diags := stateToModel(ctx, state, &m); diags.HasError() {
				t.Fatal(diags)
			}
			out := tfsdk.State{Schema: sch}
			if diags := modelToState(ctx, &m, &out); diags.HasError() || !out.Raw.Equal(state.Raw) {
				t.Fatalf("stateToModel and modelToState changed the state (%v)", diags)
			}
		})
	}
}

// TestCodecRefusesUnknownFields checks that the codec is not planned for a model it cannot
// convert, so Read falls back to the framework rather than losing a field.
func TestCodecRefusesUnknownFields(t *testing.T) {
	ctx := context.Background()
	sch := applicationSchema()
	type missingField struct {
		Name string `tfsdk:"name"`
	}
	if _, err := newCodec(ctx, sch, &missingField{}); err == nil {
		t.Error("newCodec accepted a model with a string field and most attributes missing")
	}
}
