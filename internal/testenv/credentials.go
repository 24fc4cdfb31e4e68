package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// BuildCommand builds the test program internal/testenv/cmd/NAME into a
// temporary directory of the test that holds nothing else (so it can go on
// PATH) and returns the executable's path. The programs stand in for what
// users install next to ferry: execcred, a Kubernetes exec credential plugin,
// and docker-credential-ferrytest, a docker credential helper.
func BuildCommand(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	pkg := "github.com/ferry-dev/terraform-provider-ferry/internal/testenv/cmd/" + name
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("testenv: go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// ServiceAccountToken creates the ServiceAccount namespace/name if it does
// not exist and returns a token for it from the TokenRequest API, valid for
// an hour: the token a Pod of that service account has mounted. The namespace
// must exist.
func (c *Cluster) ServiceAccountToken(t testing.TB, namespace, name string) string {
	t.Helper()
	ctx, cancel := helperContext()
	defer cancel()
	sas := c.Dynamic(t).Resource(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}).Namespace(namespace)
	sa := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": name, "namespace": namespace},
	}}
	if _, err := sas.Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("testenv: create ServiceAccount %s/%s: %v", namespace, name, err)
	}
	req := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec":     map[string]any{"expirationSeconds": int64(3600)},
	}}
	resp, err := sas.Create(ctx, req, metav1.CreateOptions{}, "token")
	if err != nil {
		t.Fatalf("testenv: TokenRequest for %s/%s: %v", namespace, name, err)
	}
	token, _, _ := unstructured.NestedString(resp.Object, "status", "token")
	if token == "" {
		t.Fatalf("testenv: TokenRequest for %s/%s returned no token", namespace, name)
	}
	return token
}
