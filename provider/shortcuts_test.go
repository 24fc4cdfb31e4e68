package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// TestPlanShortcut asks the framework and the plan shortcut the same PlanResourceChange
// questions: where the shortcut answers, its answer must be the framework's (planned state,
// private state, no replacement, no diagnostics), and it must answer the plan of an unchanged,
// undrifted application, the one a large `terraform plan` makes hundreds of times.
func TestPlanShortcut(t *testing.T) {
	ctx := context.Background()
	fw, shortcut, typ := frameworkAndShortcuts(t)
	v := applicationValues(typ)
	args, defaults, computed, syncOptions, kustomize, pinned := v.args, v.defaults, v.computed, v.syncOptions, v.kustomize, v.pinned
	str, boolean, object := tfString, tfBool, tfObject
	steady := merged(args, defaults, computed)
	settling := []byte(`{"` + privateSettling + `":"` + base64.StdEncoding.EncodeToString([]byte("true")) + `"}`)
	notSettling := []byte(`{"` + privateSettling + `":"` + base64.StdEncoding.EncodeToString([]byte("false")) + `"}`)

	for _, tc := range []struct {
		name                     string
		config, prior, proposed  map[string]tftypes.Value // proposed nil: the prior state
		priorNull, proposedKnown bool
		private                  []byte
		want                     bool // the shortcut answers
		changes                  bool // the framework plans a change (so the shortcut must not answer)
	}{
		{name: "unchanged, defaults left out", config: args, prior: steady, private: notSettling, want: true},
		{name: "unchanged, no private state", config: args, prior: steady, want: true},
		{name: "unchanged, defaults written out", config: merged(args, defaults), prior: steady, private: notSettling, want: true},
		{name: "unchanged, blocks set", config: with(args, "sync_options", syncOptions, "kustomize", kustomize),
			prior: with(steady, "sync_options", syncOptions, "kustomize", kustomize), private: notSettling, want: true},
		{name: "unchanged, settling with wait", config: args, prior: steady, private: settling, want: true},
		{name: "wait false", config: with(args, "wait", boolean(false)), prior: with(steady, "wait", boolean(false)), private: notSettling},
		{name: "wait false, settling", config: with(args, "wait", boolean(false)), prior: with(steady, "wait", boolean(false)), private: settling},
		{name: "argument removed from the configuration goes back to its default", config: args,
			prior: with(steady, "path", str("overlays/acme")), private: notSettling, changes: true},
		{name: "drifted: OutOfSync", config: args, prior: with(steady, "sync_status", str("OutOfSync")), private: notSettling, changes: true},
		{name: "drifted: another revision", config: args,
			prior: with(steady, "synced_revision", str("sha256:"+strings.Repeat("f", 64))), private: notSettling, changes: true},
		{name: "bundle changed", config: with(args, "bundle", str(strings.TrimSuffix(pinned, "ef")+"00")),
			prior: steady, proposed: with(steady, "bundle", str(strings.TrimSuffix(pinned, "ef")+"00")), private: notSettling, changes: true},
		{name: "name changed", config: with(args, "name", str("shop2")),
			prior: steady, proposed: with(steady, "name", str("shop2")), private: notSettling},
		{name: "create", config: args, priorNull: true, proposed: merged(args, defaults)},
		{name: "unknown bundle", config: with(args, "bundle", tftypes.NewValue(tftypes.String, tftypes.UnknownValue)),
			prior: steady, proposed: with(steady, "bundle", tftypes.NewValue(tftypes.String, tftypes.UnknownValue)), private: notSettling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dv := func(v tftypes.Value) *tfprotov6.DynamicValue {
				d, err := tfprotov6.NewDynamicValue(typ, v)
				if err != nil {
					t.Fatal(err)
				}
				return &d
			}
			prior := tftypes.NewValue(typ, nil)
			if !tc.priorNull {
				prior = object(typ, tc.prior)
			}
			proposed := prior
			if tc.proposed != nil {
				proposed = object(typ, tc.proposed)
			}
			req := &tfprotov6.PlanResourceChangeRequest{TypeName: applicationType, PriorState: dv(prior),
				ProposedNewState: dv(proposed), Config: dv(object(typ, tc.config)), PriorPrivate: tc.private}
			got := shortcut.plan(req)
			if (got != nil) != tc.want {
				t.Fatalf("shortcut answered: %v, want %v", got != nil, tc.want)
			}
			want, err := fw.PlanResourceChange(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.changes {
				planned, err := want.PlannedState.Unmarshal(typ)
				if err != nil {
					t.Fatal(err)
				}
				if planned.Equal(prior) && len(want.Diagnostics) == 0 {
					t.Fatal("the framework plans no change here; the case does not test what it says")
				}
			}
			if got == nil {
				return
			}
			if len(want.Diagnostics) > 0 || len(want.RequiresReplace) > 0 {
				t.Fatalf("the framework's plan has diagnostics %v or replaces %v; the shortcut answered without them", want.Diagnostics, want.RequiresReplace)
			}
			sameValue(t, "planned state", typ, got.PlannedState, want.PlannedState)
			if !bytes.Equal(got.PlannedPrivate, want.PlannedPrivate) {
				t.Fatalf("planned private state %q, the framework's %q", got.PlannedPrivate, want.PlannedPrivate)
			}
		})
	}
}

// TestUpgradeShortcut asks the framework and the upgrade shortcut to upgrade the same stored
// states: the shortcut answers for the current version, with the framework's answer, and leaves
// every other version and undecodable state to the framework.
func TestUpgradeShortcut(t *testing.T) {
	ctx := context.Background()
	fw, shortcut, typ := frameworkAndShortcuts(t)
	state := map[string]any{}
	for name := range typ.AttributeTypes {
		state[name] = nil
	}
	maps.Copy(state, map[string]any{
		"id": "shop", "name": "shop", "environment": "acme", "bundle": "registry.example/apps/shop@sha256:" + strings.Repeat("a", 64),
		"namespace": "shop", "path": ".", "wait": true, "auto_sync": false, "cascade_delete": true, "sync_status": "Synced",
		"sync_options":   map[string]any{"prune": true, "server_side_apply": nil, "create_namespace": true, "prune_last": nil, "replace": nil, "apply_out_of_sync_only": nil},
		"last_operation": map[string]any{"phase": "Succeeded", "message": "ok", "started": "", "finished": "", "retry_count": 0, "request_id": "r-1"},
	})
	full, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	state["attribute_of_an_older_schema"] = "x"
	extra, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		json    []byte
		version int64
		want    bool
	}{
		{"current version", full, 0, true},
		{"an attribute the schema no longer has", extra, 0, true},
		{"another version", full, 1, false},
		{"not an object of the schema", []byte(`{"name": ["not", "a", "string"]}`), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &tfprotov6.UpgradeResourceStateRequest{TypeName: applicationType, Version: tc.version, RawState: &tfprotov6.RawState{JSON: tc.json}}
			got := shortcut.upgrade(req)
			if (got != nil) != tc.want {
				t.Fatalf("shortcut answered: %v, want %v", got != nil, tc.want)
			}
			if got == nil {
				return
			}
			want, err := fw.UpgradeResourceState(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Diagnostics) > 0 {
				t.Fatalf("the framework's upgrade has diagnostics %v; the shortcut answered without them", want.Diagnostics)
			}
			sameValue(t, "upgraded state", typ, got.UpgradedState, want.UpgradedState)
		})
	}
}

// TestPlanShortcutRefusesUnknownSchema checks that the shortcut is not built for a schema whose
// plan modifiers or defaults it does not know (a nested attribute with a default, here).
func TestPlanShortcutRefusesUnknownSchema(t *testing.T) {
	if err := plainAttribute("x", struct{ Default any }{Default: 1}); err == nil || !strings.Contains(err.Error(), "Default") {
		t.Errorf("plainAttribute with a default = %v, want an error naming Default", err)
	}
	if err := plainAttribute("x", struct{ PlanModifiers []int }{PlanModifiers: []int{1}}); err == nil {
		t.Error("plainAttribute with plan modifiers = nil, want an error")
	}
	if err := plainAttribute("x", struct{ PlanModifiers []int }{}); err != nil {
		t.Errorf("plainAttribute without plan modifiers = %v, want nil", err)
	}
	nested := schema.SingleNestedAttribute{Computed: true, Attributes: map[string]schema.Attribute{
		"phase": schema.StringAttribute{Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
	}}
	if err := plainAttribute("last_operation", nested); err == nil || !strings.Contains(err.Error(), "last_operation.phase") {
		t.Errorf("plainAttribute with a nested attribute's plan modifier = %v, want an error naming last_operation.phase", err)
	}
}

func tfString(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
func tfBool(b bool) tftypes.Value     { return tftypes.NewValue(tftypes.Bool, b) }

// tfObject builds a value of object type t from the given attributes, null elsewhere.
func tfObject(t tftypes.Type, set map[string]tftypes.Value) tftypes.Value {
	ot := t.(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range ot.AttributeTypes {
		if v, ok := set[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(at, nil)
		}
	}
	return tftypes.NewValue(ot, vals)
}

func merged(ms ...map[string]tftypes.Value) map[string]tftypes.Value {
	out := map[string]tftypes.Value{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// with returns a copy of m with the attributes given as name, value pairs set.
func with(m map[string]tftypes.Value, kv ...any) map[string]tftypes.Value {
	out := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(tftypes.Value)
	}
	return out
}

// appValues are attribute values of a ferry_application state, for the shortcut and codec tests.
type appValues struct {
	args, defaults, computed map[string]tftypes.Value
	syncOptions, kustomize   tftypes.Value
	pinned                   string
}

func applicationValues(typ tftypes.Object) appValues {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	v := appValues{pinned: "registry.example/apps/shop@" + digest}
	v.args = map[string]tftypes.Value{"name": tfString("shop"), "environment": tfString("acme"), "bundle": tfString(v.pinned), "namespace": tfString("shop")}
	v.defaults = map[string]tftypes.Value{
		"path": tfString("."), "wait": tfBool(true), "health_timeout": tfString(defaultHealthTimeout), "stuck_after": tfString(defaultStuckAfter),
		"window_policy": tfString(defaultWindowPolicy), "auto_sync": tfBool(false), "cascade_delete": tfBool(true),
	}
	v.computed = map[string]tftypes.Value{
		"id": tfString("shop"), "sync_status": tfString("Synced"), "health_status": tfString("Healthy"), "synced_revision": tfString(digest),
		"last_operation": tfObject(typ.AttributeTypes["last_operation"], map[string]tftypes.Value{
			"phase": tfString("Succeeded"), "message": tfString("successfully synced (all tasks run)"), "started": tfString("2026-11-27T02:00:00Z"),
			"finished": tfString("2026-11-27T02:00:05Z"), "retry_count": tftypes.NewValue(tftypes.Number, 0), "request_id": tfString("r-1"),
		}),
	}
	v.syncOptions = tfObject(typ.AttributeTypes["sync_options"], map[string]tftypes.Value{"create_namespace": tfBool(true), "prune": tfBool(true)})
	v.kustomize = tfObject(typ.AttributeTypes["kustomize"], map[string]tftypes.Value{
		"name_prefix":   tfString("acme-"),
		"images":        tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{tfString("api=registry.example/api@" + digest)}),
		"common_labels": tftypes.NewValue(tftypes.Map{ElementType: tftypes.String}, map[string]tftypes.Value{"customer": tfString("acme")}),
		// patches and helm values are Sensitive, which changes nothing the codec or the shortcuts do.
		"patches": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{tfString("kind: Secret\nmetadata: {name: db}\nstringData: {password: s3cret}\n")}),
	})
	return v
}

// frameworkAndShortcuts returns the framework's server, the shortcuts and ferry_application's type.
func frameworkAndShortcuts(t *testing.T) (tfprotov6.ProviderServer, *shortcuts, tftypes.Object) {
	t.Helper()
	fw, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := newShortcuts(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fw, sc, sc.typ.(tftypes.Object)
}

// sameValue fails the test when the shortcut's value differs from the framework's.
func sameValue(t *testing.T, what string, typ tftypes.Type, got, want *tfprotov6.DynamicValue) {
	t.Helper()
	gotV, err := got.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	wantV, err := want.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	if !gotV.Equal(wantV) {
		diffs, _ := gotV.Diff(wantV)
		t.Fatalf("%s differs from the framework's: %v", what, diffs)
	}
}
