package argocd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
)

// TestClassifyFailure classifies failed operations from typed causes: the first rows are the
// messages Argo CD wrote in the engine tests against the real controller (TestClass*), the others
// the forms the classifier decodes.
func TestClassifyFailure(t *testing.T) {
	digest := "sha256:5e619246afaa14ea1588f0eb06712764ecaa0d3e9763293db947744a69aaa722"
	for _, tt := range []struct {
		name      string
		message   string
		resources []any // syncResult.resources
		want      Class
		manifests string
	}{
		{name: "registry unreachable (TestClassTransientRegistryUnreachable)",
			message: `ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = failed to resolve revision "` + digest + `": cannot get digest for revision ` + digest + `: Head "http://127.0.0.1:33377/v2/engine/class-transient/manifests/` + digest + `": dial tcp 127.0.0.1:33377: connect: connection refused`,
			want:    ClassTransient},
		{name: "cluster unreachable (TestClassTransientClusterUnreachable)",
			message: `ComparisonError: Failed to load live state: failed to get cluster info for "https://127.0.0.1:42165": error synchronizing cache state : failed to get server version: failed to get server version: Get "https://127.0.0.1:42165/version?timeout=32s": dial tcp 127.0.0.1:42165: connect: connection refused;` +
				`ComparisonError: Failed to load target state: failed to get cluster version for cluster "https://127.0.0.1:42165": failed to get cluster info for "https://127.0.0.1:42165": error synchronizing cache state : failed to get server version: failed to get server version: Get "https://127.0.0.1:42165/version?timeout=32s": dial tcp 127.0.0.1:42165: connect: connection refused`,
			want: ClassTransient},
		{name: "manifest not an object (TestClassManifestsUnparseable)",
			message: `ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = FailedPrecondition desc = Failed to unmarshal "broken.yaml": failed to unmarshal manifest: error unmarshaling JSON: while decoding JSON: Object 'Kind' is missing in '{"apiVersion":"v1","kind":["ConfigMap"],"metadata":{"name":"b"}}'`,
			want:    ClassPermanent, manifests: `Failed to unmarshal "broken.yaml": failed to unmarshal manifest: error unmarshaling JSON: while decoding JSON: Object 'Kind' is missing in '{"apiVersion":"v1","kind":["ConfigMap"],"metadata":{"name":"b"}}'`},
		{name: "rejected manifest (TestClassRejectedManifest)",
			message:   `one or more objects failed to apply, reason: ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters`,
			resources: []any{map[string]any{"kind": "ConfigMap", "name": "Bad_Name", "status": "SyncFailed", "message": `ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"`}},
			want:      ClassPermanent},
		{name: "two content layers",
			message: "ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = expected only a single oci content layer, got 2",
			want:    ClassPermanent, manifests: "expected only a single oci content layer, got 2"},
		{name: "missing path",
			message: "ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = nope: app path does not exist",
			want:    ClassPermanent, manifests: "nope: app path does not exist"},
		{name: "kind not permitted",
			message:   "one or more synchronization tasks are not valid: resource rbac.authorization.k8s.io:ClusterRole is not permitted in project acme",
			resources: []any{map[string]any{"group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x", "status": "SyncFailed", "message": "resource rbac.authorization.k8s.io:ClusterRole is not permitted in project acme"}},
			want:      ClassPermanent},
		{name: "resource failed to apply: cluster connection reset",
			message:   "one or more objects failed to apply, reason: Patch \"https://10.0.0.1:6443/api/v1/namespaces/a/configmaps/x\": read tcp 10.0.0.2:4711->10.0.0.1:6443: read: connection reset by peer",
			resources: []any{map[string]any{"kind": "ConfigMap", "name": "x", "status": "SyncFailed", "message": "Patch \"https://10.0.0.1:6443/api/v1/namespaces/a/configmaps/x\": read tcp 10.0.0.2:4711->10.0.0.1:6443: read: connection reset by peer"}},
			want:      ClassTransient},
		{name: "hook failed", message: "one or more synchronization tasks completed unsuccessfully",
			resources: []any{map[string]any{"kind": "Job", "name": "migrate", "status": "Synced", "hookPhase": "Failed", "message": "Job has reached the specified backoff limit"}},
			want:      ClassPermanent},
		{name: "repo-server unavailable", message: "ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:8081: connect: connection refused\"",
			want: ClassTransient},
		{name: "repo-server deadline", message: "ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = DeadlineExceeded desc = context deadline exceeded",
			want: ClassTransient},
		{name: "permission denied by the repo-server, even with network text", message: "ComparisonError: Failed to load target state: rpc error: code = PermissionDenied desc = helm repos http://x are not permitted in project 'acme': dial tcp refused",
			want: ClassPermanent, manifests: "helm repos http://x are not permitted in project 'acme': dial tcp refused"},
		{name: "registry 503", message: `ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = cannot get digest for revision 1.0: HEAD "http://r/v2/a/manifests/1.0": response status code 503: Service Unavailable`,
			want: ClassTransient},
		{name: "registry 429", message: `ComparisonError: Failed to load target state: rpc error: code = Unknown desc = GET "http://r/v2/a/tags/list": response status code 429: Too Many Requests`,
			want: ClassTransient},
		{name: "registry 401", message: `ComparisonError: Failed to load target state: rpc error: code = Unknown desc = HEAD "http://r/v2/a/manifests/1.0": response status code 401: Unauthorized`,
			want: ClassPermanent, manifests: `HEAD "http://r/v2/a/manifests/1.0": response status code 401: Unauthorized`},
		{name: "EOF after Argo CD's retries", message: `ComparisonError: Failed to load target state: rpc error: code = Unknown desc = Get "http://r/v2/": EOF (retried 2 times).`,
			want: ClassTransient},
		{name: "API server unavailable", message: "Failed to get destination cluster: the server is currently unable to handle the request (get secrets)",
			want: ClassTransient},
		{name: "invalid spec, whatever its text", message: "InvalidSpecError: application destination server 'https://x' and namespace 'a' do not match any of the allowed destinations in project 'acme': dial tcp",
			want: ClassPermanent},
		{name: "invalid spec next to a transient comparison error", message: "ComparisonError: Failed to load live state: Get \"https://x/version\": dial tcp 1.2.3.4:443: i/o timeout;InvalidSpecError: Application referencing project acme which does not exist",
			want: ClassPermanent},
		{name: "bare 503 and EOF in a message are not causes", message: "one or more objects failed to apply, reason: ConfigMap \"cm-503\" is invalid: data.EOF: Invalid value",
			resources: []any{map[string]any{"kind": "ConfigMap", "name": "cm-503", "status": "SyncFailed", "message": "ConfigMap \"cm-503\" is invalid: data.EOF: Invalid value"}},
			want:      ClassPermanent},
		{name: "unexpected EOF at the end of a wrapped error", message: `ComparisonError: Failed to load target state: rpc error: code = Unknown desc = failed to pull "r/a:1.0": read response: unexpected EOF`,
			want: ClassTransient},
		{name: "unexpected EOF inside a message is not a cause", message: "one or more objects failed to apply, reason: ConfigMap \"x\" is invalid: data.unexpected EOF: Invalid value",
			resources: []any{map[string]any{"kind": "ConfigMap", "name": "x", "status": "SyncFailed", "message": "ConfigMap \"x\" is invalid: data.unexpected EOF: Invalid value"}},
			want:      ClassPermanent},
		{name: "http2 GOAWAY", message: `ComparisonError: Failed to load live state: Get "https://10.0.0.1:6443/api?timeout=32s": http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=""`,
			want: ClassTransient},
		{name: "http2 connection lost", message: `Failed to get destination cluster: Get "https://10.0.0.1:6443/api/v1/namespaces/argocd/secrets": http2: client connection lost`,
			want: ClassTransient},
		{name: "waiting for a connection cancelled", message: `ComparisonError: Failed to load live state: Get "https://10.0.0.1:6443/version": net/http: request canceled while waiting for connection`,
			want: ClassTransient},
		{name: "client timeout awaiting headers", message: `ComparisonError: Failed to load target state: rpc error: code = Unknown desc = HEAD "http://r/v2/a/manifests/1.0": Get "http://r/token": net/http: request canceled (Client.Timeout exceeded while awaiting headers)`,
			want: ClassTransient},
		{name: "http2 text inside a validation message is not a cause", message: "one or more objects failed to apply, reason: ConfigMap \"x\" is invalid: data.http2: server sent GOAWAY and closed the connection: Invalid value",
			resources: []any{map[string]any{"kind": "ConfigMap", "name": "x", "status": "SyncFailed", "message": "ConfigMap \"x\" is invalid: data.http2: server sent GOAWAY and closed the connection: Invalid value"}},
			want:      ClassPermanent},
		{name: "unavailable status nested in an unknown one", message: `ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = failed to get cluster version: rpc error: code = Unavailable desc = connection error`,
			want: ClassTransient},
		{name: "not found status nested in an internal one", message: `ComparisonError: Failed to load target state: rpc error: code = Internal desc = rpc error: code = NotFound desc = repository not found`,
			want: ClassPermanent, manifests: "rpc error: code = NotFound desc = repository not found"},
		{name: "destination cluster not yet in the controller's cache", message: `Failed to get destination cluster: error getting cluster by server "https://10.0.0.1:6443": rpc error: code = NotFound desc = cluster "https://10.0.0.1:6443" not found`,
			want: ClassTransient},
		{name: "destination cluster permission denied", message: `Failed to get destination cluster: rpc error: code = PermissionDenied desc = no`,
			want: ClassPermanent},
		{name: "unknown text", message: "something went wrong", want: ClassPermanent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op := map[string]any{"phase": "Error", "message": tt.message}
			if tt.resources != nil {
				op["syncResult"] = map[string]any{"resources": tt.resources}
			}
			got := classifyFailure(op)
			if got.class != tt.want || got.manifests != tt.manifests {
				t.Errorf("classifyFailure(%q) = %s, manifests %q; want %s, %q", tt.message, got.class, got.manifests, tt.want, tt.manifests)
			}
		})
	}
}

// TestOperationConditions splits an operation message in FormatAppConditions' form, whose
// messages may contain ';' themselves.
func TestOperationConditions(t *testing.T) {
	got := operationConditions("ComparisonError: a; b;InvalidSpecError: c;d")
	want := []condition{{condComparisonError, "a; b"}, {condInvalidSpecError, "c;d"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("operationConditions() = %v, want %v", got, want)
	}
	if got := operationConditions("one or more objects failed to apply"); got != nil {
		t.Errorf("operationConditions(not conditions) = %v, want nil", got)
	}
}

// TestAPIErrorClass classifies the errors of ferry's own API calls by type.
func TestAPIErrorClass(t *testing.T) {
	gr := schema.GroupResource{Group: "argoproj.io", Resource: "applications"}
	for _, tt := range []struct {
		err  error
		want Class
	}{
		{apierrors.NewNotFound(gr, "shop"), ClassPermanent},
		{apierrors.NewForbidden(gr, "shop", errors.New("no")), ClassPermanent},
		{apierrors.NewUnauthorized("no"), ClassPermanent},
		{apierrors.NewInvalid(schema.GroupKind{Group: "argoproj.io", Kind: "Application"}, "shop", nil), ClassPermanent},
		{apierrors.NewServiceUnavailable("later"), ClassTransient},
		{apierrors.NewTooManyRequests("later", 1), ClassTransient},
		{apierrors.NewInternalError(errors.New("etcd")), ClassTransient},
		{apierrors.NewServerTimeout(gr, "update", 1), ClassTransient},
		{&url.Error{Op: "Get", URL: "https://127.0.0.1:6443/apis", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, ClassTransient},
		{fmt.Errorf("read: %w", io.EOF), ClassTransient},
		// Client.get's error for a missing object.
		{fmt.Errorf("%s %s/%s: %w", "applications", "argocd", "shop", ErrNotFound), ClassPermanent},
		// Credentials that cannot be obtained, as client-go returns the exec plugin's failure.
		{&url.Error{Op: "Get", URL: "https://127.0.0.1:6443/apis", Err: &kube.AuthError{Err: errors.New("getting credentials: exit status 1")}}, ClassPermanent},
		{fmt.Errorf("get appprojects argocd/acme: %w", &url.Error{Op: "Get", URL: "https://x/apis", Err: x509.UnknownAuthorityError{}}), ClassPermanent},
		{&url.Error{Op: "Get", URL: "https://x/apis", Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}}, ClassPermanent},
		{&url.Error{Op: "Get", URL: "https://x/apis", Err: x509.CertificateInvalidError{Cert: &x509.Certificate{}, Reason: x509.Expired}}, ClassPermanent},
		{&url.Error{Op: "Get", URL: "https://x/apis", Err: &tls.CertificateVerificationError{Err: errors.New("bad")}}, ClassPermanent},
	} {
		if got := apiErrorClass(tt.err); got != tt.want {
			t.Errorf("apiErrorClass(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
