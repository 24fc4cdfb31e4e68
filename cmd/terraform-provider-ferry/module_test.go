package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"oras.land/oras-go/v2/registry/remote/auth"
)

var shared = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true, ClusterOptions: testenv.ClusterOptions{SimulatedKubelet: true}})

// TestRemoteModuleApply runs examples/customer the way an HCP Terraform run or a CI job without
// ferry gets it: a clean directory holding only the example's .tf files, the infrastructure
// module's source set to the bundle's terraform_module_source (the Terraform layer's blob URL in
// the registry), the provider from a local mirror, and no ferry binary on PATH. `terraform init`
// installs the bundle's module, `terraform apply` applies it and syncs the application to the
// bundle digest (the example's postcondition). With the module source pointing at another
// bundle's Terraform layer, `terraform plan` fails on verify_modules and nothing is created. And
// `tofu init` and `tofu apply` do the same with the module sourced oci://…?digest= directly.
func TestRemoteModuleApply(t *testing.T) {
	testenv.SkipShort(t, "Terraform, a registry, Kubernetes and Argo CD")
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set; run through make test (tests never download Terraform)")
	}
	e := shared.Get(t)
	client, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	push := func(dir, ref string) *bundle.Info {
		t.Helper()
		r, err := bundle.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		res, err := bundle.Push(context.Background(), client, dir, r, bundle.PushOptions{
			PackOptions: bundle.PackOptions{Offline: true, Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		})
		if err != nil {
			t.Fatal(err)
		}
		pinned, _ := bundle.ParseReference(res.PinnedReference)
		info, err := bundle.Inspect(context.Background(), client, pinned)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	release := push("../../examples/release", e.Registry.Addr+"/shop/bundle:1.4.0")
	if !strings.HasPrefix(release.TerraformModuleSource, "http://"+e.Registry.Addr+"/v2/shop/bundle/blobs/sha256:") {
		t.Fatalf("terraform module source %q", release.TerraformModuleSource)
	}
	// Another release whose module differs in one output.
	other := t.TempDir()
	if err := os.CopyFS(other, os.DirFS("../../examples/release")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(other, "terraform", "outputs.tf"), "\noutput \"tampered\" {\n  value = true\n}\n")
	tampered := push(other, e.Registry.Addr+"/shop/bundle:tampered")

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, e.Cluster.CAData, 0o644); err != nil {
		t.Fatal(err)
	}
	// OpenTofu reads the module from oci://…?digest=, over HTTPS only: the same registry behind a
	// TLS front whose CA it is given.
	tofu, err := testenv.Tool("tofu")
	if err != nil {
		t.Fatal(err)
	}
	tlsHost, registryCA := testenv.TLSFront(t, e.Registry.Addr)
	ociSource := strings.Replace(release.OpenTofuModuleSource, "oci://"+e.Registry.Addr+"/", "oci://"+tlsHost+"/", 1)

	for _, tt := range []struct {
		name, engine, customer, source, want string
	}{
		{name: "bundle module", engine: tf, customer: "acme", source: release.TerraformModuleSource},
		{name: "other module", engine: tf, customer: "globex", source: tampered.TerraformModuleSource, want: "Module Differs From the Bundle"},
		{name: "opentofu oci module", engine: tofu, customer: "initech", source: ociSource},
	} {
		// The provider comes from a filesystem mirror under the engine's registry host; PATH holds
		// the engine alone.
		host := "registry.terraform.io"
		if tt.engine == tofu {
			host = "registry.opentofu.org"
		}
		_, rc := testenv.ProviderMirror(t, host)
		pathDir := t.TempDir()
		if err := os.Symlink(tt.engine, filepath.Join(pathDir, filepath.Base(tt.engine))); err != nil {
			t.Fatal(err)
		}
		t.Run(tt.name, func(t *testing.T) {
			work := t.TempDir()
			for _, f := range []string{"main.tf", "variables.tf", "outputs.tf"} {
				b, err := os.ReadFile(filepath.Join("../../examples/customer", f))
				if err != nil {
					t.Fatal(err)
				}
				text := string(b)
				if f == "main.tf" {
					if !strings.Contains(text, `source = "./bundle/terraform"`) {
						t.Fatal(`examples/customer/main.tf has no source = "./bundle/terraform" to replace`)
					}
					text = strings.Replace(text, `source = "./bundle/terraform"`, `source = "`+tt.source+`"`, 1)
				}
				writeTestFile(t, filepath.Join(work, f), text)
			}
			run := func(args ...string) (string, error) {
				cmd := exec.Command(tt.engine, append(args, "-no-color", "-input=false")...)
				cmd.Dir = work
				// TFC_RUN_ID is what an HCP Terraform run sets; ferry records it on the operation.
				cmd.Env = append(os.Environ(), "PATH="+pathDir, "TFC_RUN_ID=run-"+tt.customer, "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
					"HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir(), "FERRY_CACHE_DIR="+t.TempDir(),
					"TF_VAR_customer="+tt.customer, "TF_VAR_bundle="+release.Reference+":1.4.0", "TF_VAR_registry_plain_http=true",
					"TF_VAR_kubeconfig="+e.Cluster.Kubeconfig, "TF_VAR_argocd_namespace="+e.ArgoCD.Namespace,
					"TF_VAR_cluster_server="+e.ArgoCD.ClusterServer, "TF_VAR_cluster_token="+e.Cluster.Token, "TF_VAR_cluster_ca_file="+caFile, "SSL_CERT_FILE="+registryCA)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				return out.String(), err
			}
			if out, err := run("init"); err != nil {
				t.Fatalf("terraform init: %v\n%s", err, out)
			}
			out, err := run("apply", "-auto-approve")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("terraform apply: %v\n%s", err, out)
				}
				app := e.ArgoCD.Application(t, "shop-"+tt.customer)
				if rev, _, _ := unstructured.NestedString(app.Object, "status", "sync", "revision"); rev != release.Digest {
					t.Errorf("application synced to %q, want %s", rev, release.Digest)
				}
				info, _, _ := unstructured.NestedSlice(app.Object, "status", "operationState", "operation", "info")
				if !slices.ContainsFunc(info, func(i any) bool {
					m, _ := i.(map[string]any)
					return m["name"] == argocd.InfoRunID && m["value"] == "run-"+tt.customer
				}) {
					t.Errorf("operation info %v lacks %s=run-%s", info, argocd.InfoRunID, tt.customer)
				}
				return
			}
			if err == nil {
				t.Fatalf("terraform apply with another bundle's module succeeded:\n%s", out)
			}
			if text := strings.Join(strings.Fields(out), " "); !strings.Contains(text, tt.want) || !strings.Contains(text, "outputs.tf differs") {
				t.Errorf("apply with another bundle's module does not say %q and which file differs:\n%s", tt.want, out)
			}
			if strings.Contains(out, "Creating...") || strings.Contains(out, "Creation complete") {
				t.Errorf("apply created something although the module is not the bundle's:\n%s", out)
			}
		})
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteModuleNetrc: `terraform init` installs terraform_module_source from a registry that
// requires credentials when, and only when, a .netrc file (NETRC) holds them for the registry
// host: Terraform's HTTP module source sends HTTP basic credentials from nowhere else.
func TestRemoteModuleNetrc(t *testing.T) {
	testenv.SkipShort(t, "Terraform and a registry")
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set; run through make test (tests never download Terraform)")
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	client, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true,
		Credentials: bundle.StaticCredentials(map[string]auth.Credential{reg.Addr: {Username: reg.Username, Password: reg.Password}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := bundle.ParseReference(reg.Addr + "/shop/bundle:1.4.0")
	res, err := bundle.Push(context.Background(), client, "../../examples/release", ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Offline: true}})
	if err != nil {
		t.Fatal(err)
	}
	pinned, _ := bundle.ParseReference(res.PinnedReference)
	info, err := bundle.Inspect(context.Background(), client, pinned)
	if err != nil {
		t.Fatal(err)
	}
	// The machine is the URL's host with its port, as Terraform looks it up.
	netrc := filepath.Join(t.TempDir(), "netrc")
	writeTestFile(t, netrc, "machine "+reg.Addr+" login "+reg.Username+" password "+reg.Password+"\n")
	for _, tt := range []struct {
		name  string
		netrc string
		fails bool
	}{{"without credentials", os.DevNull, true}, {"with a netrc", netrc, false}} {
		t.Run(tt.name, func(t *testing.T) {
			work := t.TempDir()
			writeTestFile(t, filepath.Join(work, "main.tf"), "module \"infra\" {\n  source   = \""+info.TerraformModuleSource+"\"\n  customer = \"acme\"\n}\n")
			cmd := exec.Command(tf, "init", "-backend=false", "-input=false", "-no-color")
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+os.DevNull, "CHECKPOINT_DISABLE=1", "HOME="+t.TempDir(), "NETRC="+tt.netrc)
			out, err := cmd.CombinedOutput()
			if tt.fails {
				if err == nil || !strings.Contains(string(out), "401") {
					t.Errorf("terraform init without credentials: %v, want a 401 failure\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("terraform init with a netrc: %v\n%s", err, out)
			}
			if _, err := os.Stat(filepath.Join(work, ".terraform", "modules", "infra", "main.tf")); err != nil {
				t.Errorf("module not installed: %v\n%s", err, out)
			}
		})
	}
}
