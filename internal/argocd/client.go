// Package argocd drives Argo CD through the Kubernetes API only (no Argo CD API server or token):
// it manages AppProjects, cluster and repository Secrets and Applications with server-side apply
// under one field manager, requests syncs through the operation field, and follows their outcome.
// The provider and the CLI share it.
package argocd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/ferry-dev/terraform-provider-ferry/internal/version"
)

// FieldManager is the server-side apply field manager of everything ferry writes.
const FieldManager = "ferry"

// Labels and annotations ferry sets.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedByFerry      = "ferry"
	LabelSecretType     = "argocd.argoproj.io/secret-type"
	LabelEnvironment    = "ferry.dev/environment"
	AnnotationOverride  = "ferry.dev/override-reason"
	AnnotationRequestID = "ferry.dev/request-id"
)

// GroupVersionResources of the objects ferry manages.
var (
	ApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	AppProjectGVR  = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
	SecretGVR      = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// ErrNotFound is returned when an object ferry reads does not exist.
var ErrNotFound = errors.New("not found")

// Client talks to the cluster where Argo CD runs.
type Client struct {
	dyn       dynamic.Interface
	namespace string
	cfg       *rest.Config // nil for NewFromDynamic: destination clusters are not diagnosed
	dests     destinations
	writes    *atomic.Uint64   // writes answered (BatchReader); nil for NewFromDynamic
	raw       *rest.RESTClient // listFast's; nil for NewFromDynamic
}

// New returns a client for Argo CD in namespace. It does not contact the cluster.
func New(cfg *rest.Config, namespace string) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = version.UserAgent("ferry")
	}
	// No client-side rate limit (a negative QPS), as controller-runtime's clients since v0.15:
	// client-go's default of 5 requests per second, or even kubectl's 50 with a burst of 300,
	// makes a plan of hundreds of applications wait on the client side (500 reads took 4 s at
	// kubectl's limits), while the API server protects itself with API Priority and Fairness
	// (answering 429 with Retry-After, which client-go honours) and Terraform's parallelism
	// already bounds how many requests run at once.
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS = -1
	}
	if cfg.WarningHandler == nil && cfg.WarningHandlerWithContext == nil {
		cfg.WarningHandler = quietFinalizerWarning{rest.WarningLogger{}}
	}
	writes := new(atomic.Uint64)
	counted := rest.CopyConfig(cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper { return writeCounter{next: rt, writes: writes} })
	hc, err := rest.HTTPClientFor(counted)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(counted, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	raw, err := newRawClient(counted, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Client{dyn: dyn, namespace: namespace, cfg: cfg, writes: writes, raw: raw}, nil
}

// quietFinalizerWarning drops the API server's warning about Argo CD's own finalizer name
// ("resources-finalizer.argocd.argoproj.io" is not path-qualified), which every write of a
// cascading Application would otherwise print; other warnings go to next.
type quietFinalizerWarning struct{ next rest.WarningHandler }

func (q quietFinalizerWarning) HandleWarningHeader(code int, agent, text string) {
	if strings.Contains(text, ResourcesFinalizer) && strings.Contains(text, "domain-qualified finalizer") {
		return
	}
	q.next.HandleWarningHeader(code, agent, text)
}

// NewFromDynamic returns a client over an existing dynamic client.
func NewFromDynamic(dyn dynamic.Interface, namespace string) *Client {
	return &Client{dyn: dyn, namespace: namespace}
}

// Namespace returns the Argo CD namespace.
func (c *Client) Namespace() string { return c.namespace }

func (c *Client) res(gvr schema.GroupVersionResource) dynamic.ResourceInterface {
	return c.dyn.Resource(gvr).Namespace(c.namespace)
}

// apply server-side-applies obj under ferry's field manager, taking over the fields it sets.
func (c *Client) apply(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	obj.SetNamespace(c.namespace)
	out, err := c.res(gvr).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("apply %s %s/%s: %w", obj.GetKind(), c.namespace, obj.GetName(), err)
	}
	return out, nil
}

// get reads an object; a missing one is ErrNotFound.
func (c *Client) get(ctx context.Context, gvr schema.GroupVersionResource, name string) (*unstructured.Unstructured, error) {
	obj, err := c.res(gvr).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s %s/%s: %w", gvr.Resource, c.namespace, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", gvr.Resource, c.namespace, name, err)
	}
	return obj, nil
}

// del deletes an object; a missing one is not an error.
func (c *Client) del(ctx context.Context, gvr schema.GroupVersionResource, name string, opts metav1.DeleteOptions) error {
	err := c.res(gvr).Delete(ctx, name, opts)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", gvr.Resource, c.namespace, name, err)
	}
	return nil
}

func newObject(apiVersion, kind, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	all := map[string]string{LabelManagedBy: ManagedByFerry}
	for k, v := range labels {
		all[k] = v
	}
	u.SetLabels(all)
	return u
}
