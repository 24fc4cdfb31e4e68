package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestReadShortcut asks the framework and the read shortcut of one configured provider to refresh
// the same states of live Applications in the real Argo CD: where the shortcut answers, its new
// state, private state and diagnostics must be the framework's. It answers the refresh of a
// deployed application and of a deleted one, and leaves to the framework a state following an
// import (the framework's own private key) and any call before the provider is configured.
func TestReadShortcut(t *testing.T) {
	e := sharedEnv.Get(t)
	ctx := context.Background()
	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	rel := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnvironment(ctx, argocd.Environment{Name: env, Namespaces: []string{env}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/apps/*"},
		ClusterResources: []string{"Namespace"}, Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true}}); err != nil {
		t.Fatal(err)
	}
	repo, digest, err := pinnedBundle(rel.PinnedReference)
	if err != nil {
		t.Fatal(err)
	}
	// Deployed by Argo CD's automated sync: what the refresh reads is the controller's own status.
	if _, err := c.ApplyApplication(ctx, argocd.App{Name: app, Project: env, RepoURL: repo, Digest: digest, Server: e.ArgoCD.ClusterServer,
		Namespace: env, SyncOptions: []string{argocd.SyncOptionCreateNamespace}, CascadeDelete: true, AutoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteApplication(context.Background(), app, true) })
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		live, err := c.GetApplication(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if st := argocd.StatusOf(live); st.SyncStatus == "Synced" && st.HealthStatus == "Healthy" && st.Revision == digest && !argocd.SyncSettling(live) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("application %s not Synced and Healthy at %s after 3 minutes: %+v", app, digest, argocd.StatusOf(live))
		}
	}

	srv, err := NewServer("test")()
	if err != nil {
		t.Fatal(err)
	}
	s := srv.(server)
	typ := s.shortcuts.typ.(tftypes.Object)
	state := func(name string) *tfprotov6.DynamicValue {
		v := applicationValues(typ)
		vals := merged(v.args, v.defaults, map[string]tftypes.Value{"id": tfString(name), "name": tfString(name), "environment": tfString(env),
			"bundle": tfString(rel.PinnedReference), "namespace": tfString(env), "auto_sync": tfBool(true),
			"sync_options": tfObject(typ.AttributeTypes["sync_options"], map[string]tftypes.Value{"create_namespace": tfBool(true)})})
		dv, err := tfprotov6.NewDynamicValue(typ, tfObject(typ, vals))
		if err != nil {
			t.Fatal(err)
		}
		return &dv
	}
	private := func(kv ...string) []byte {
		var b bytes.Buffer
		b.WriteString("{")
		for i := 0; i < len(kv); i += 2 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"` + kv[i] + `":"` + base64.StdEncoding.EncodeToString([]byte(kv[i+1])) + `"`)
		}
		b.WriteString("}")
		return b.Bytes()
	}
	read := func(name string, priv []byte) *tfprotov6.ReadResourceRequest {
		return &tfprotov6.ReadResourceRequest{TypeName: applicationType, CurrentState: state(name), Private: priv}
	}

	if got := s.shortcuts.read(ctx, read(app, nil)); got != nil {
		t.Fatal("the shortcut answered before the provider was configured")
	}
	configure(t, s, e)

	for _, tc := range []struct {
		name string
		req  *tfprotov6.ReadResourceRequest
		want bool // the shortcut answers
	}{
		{"deployed, no private state", read(app, nil), true},
		{"deployed, settling recorded before, another provider key", read(app, private(privateSettling, "true", "other", `{"a":1}`)), true},
		{"private state with a value that is not JSON", read(app, private("empty", "")), false},
		{"deleted", read(app+"-gone", private(privateSettling, "false")), true},
		{"following an import", read(app, private(".import_before_read", "true")), false},
		{"private state not the framework's", read(app, []byte(`["x"]`)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.shortcuts.read(ctx, tc.req)
			if (got != nil) != tc.want {
				t.Fatalf("shortcut answered: %v, want %v", got != nil, tc.want)
			}
			if got == nil {
				return
			}
			want, err := s.ProviderServer.ReadResource(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if summaries(got.Diagnostics) != summaries(want.Diagnostics) {
				t.Fatalf("diagnostics %s, the framework's %s", summaries(got.Diagnostics), summaries(want.Diagnostics))
			}
			sameValue(t, "new state", typ, got.NewState, want.NewState)
			if !bytes.Equal(got.Private, want.Private) {
				t.Fatalf("private state %q, the framework's %q", got.Private, want.Private)
			}
		})
	}
}

// configure configures the provider served by s for the environment e, as Terraform would.
func configure(t *testing.T, s server, e *testenv.Env) {
	t.Helper()
	ctx := context.Background()
	ps, err := s.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	typ := ps.Provider.ValueType().(tftypes.Object)
	cfg := tfObject(typ, map[string]tftypes.Value{
		"argocd_namespace": tfString(e.ArgoCD.Namespace),
		"kubernetes":       tfObject(typ.AttributeTypes["kubernetes"], map[string]tftypes.Value{"config_path": tfString(e.Cluster.Kubeconfig)}),
		"registry":         tftypes.NewValue(typ.AttributeTypes["registry"], []tftypes.Value{}),
	})
	dv, err := tfprotov6.NewDynamicValue(typ, cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: &dv})
	if err != nil || len(resp.Diagnostics) > 0 {
		t.Fatalf("configure the provider: %v %s", err, summaries(resp.Diagnostics))
	}
}
