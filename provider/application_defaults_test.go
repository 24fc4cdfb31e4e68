package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestApplicationSchemaDefaults: the defaults of ferry_application's sync and wait arguments are
// the engine's (argocd.DefaultSyncOptions), and each description, which the generated
// docs/resources/application.md shows, names that same value.
func TestApplicationSchemaDefaults(t *testing.T) {
	var resp resource.SchemaResponse
	NewApplicationResource().Schema(context.Background(), resource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	tests := []struct {
		attr string
		want string
	}{
		{"health_timeout", argocd.ShortDuration(argocd.DefaultHealthTimeout)},
		{"stuck_after", argocd.ShortDuration(argocd.DefaultStuckAfter)},
		{"window_policy", string(argocd.DefaultWindowPolicy)},
	}
	for _, tt := range tests {
		a, ok := resp.Schema.Attributes[tt.attr].(schema.StringAttribute)
		if !ok || a.Default == nil {
			t.Errorf("attribute %s: no string default", tt.attr)
			continue
		}
		var d defaults.StringResponse
		a.Default.DefaultString(context.Background(), defaults.StringRequest{Path: path.Root(tt.attr)}, &d)
		if got := d.PlanValue.ValueString(); got != tt.want {
			t.Errorf("%s default = %q, want %q (the engine's)", tt.attr, got, tt.want)
		}
		if desc := a.MarkdownDescription; !strings.Contains(desc, "Default `"+tt.want+"`") {
			t.Errorf("%s description %q, want it to say Default `%s`", tt.attr, desc, tt.want)
		}
	}
	// The durations parse back to the engine's values (engineInput parses them).
	for attr, want := range map[string]time.Duration{defaultHealthTimeout: argocd.DefaultHealthTimeout, defaultStuckAfter: argocd.DefaultStuckAfter} {
		if got, err := time.ParseDuration(attr); err != nil || got != want {
			t.Errorf("time.ParseDuration(%q) = %v, %v; want %v", attr, got, err, want)
		}
	}
	if defaultTimeout != argocd.DefaultTimeout {
		t.Errorf("defaultTimeout = %v, want argocd.DefaultTimeout %v", defaultTimeout, argocd.DefaultTimeout)
	}
	tb, ok := resp.Schema.Blocks["timeouts"].(schema.SingleNestedBlock)
	if !ok {
		t.Fatalf("timeouts block is %T", resp.Schema.Blocks["timeouts"])
	}
	for _, op := range []string{"create", "update", "delete"} {
		a, _ := tb.Attributes[op].(schema.StringAttribute)
		if want := "Default `" + argocd.ShortDuration(argocd.DefaultTimeout) + "`"; !strings.Contains(a.Description, want) {
			t.Errorf("timeouts.%s description %q, want it to say %s", op, a.Description, want)
		}
	}
}
