package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// fieldManager is the server-side apply field manager of testenv's writes.
const fieldManager = "ferry-testenv"

// resourceInfo is what discovery says about one kind.
type resourceInfo struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// Resource returns the dynamic client for the resource serving kind in
// apiVersion ("apps/v1", "Deployment"), found through discovery (CRDs
// included once established). Use .Namespace(ns) for namespaced kinds.
func (c *Cluster) Resource(t testing.TB, apiVersion, kind string) dynamic.NamespaceableResourceInterface {
	t.Helper()
	ri, err := c.resourceFor(context.Background(), apiVersion, kind)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dyn, err := c.dynamic()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dyn.Resource(ri.gvr)
}

// resourceFor maps apiVersion and kind to a resource through the discovery
// document of the group version, cached per group version and refreshed on
// a miss (so CRDs installed later are found).
func (c *Cluster) resourceFor(ctx context.Context, apiVersion, kind string) (resourceInfo, error) {
	key := apiVersion + "/" + kind
	c.mu.Lock()
	ri, ok := c.resources[key]
	c.mu.Unlock()
	if ok {
		return ri, nil
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return resourceInfo{}, fmt.Errorf("parse apiVersion %q: %w", apiVersion, err)
	}
	path := "/apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	var list metav1.APIResourceList
	if err := c.getJSON(ctx, path, &list); err != nil {
		return resourceInfo{}, fmt.Errorf("discover %s: %w", apiVersion, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resources == nil {
		c.resources = map[string]resourceInfo{}
	}
	for _, r := range list.APIResources {
		if strings.Contains(r.Name, "/") { // a subresource
			continue
		}
		c.resources[apiVersion+"/"+r.Kind] = resourceInfo{gvr: gv.WithResource(r.Name), namespaced: r.Namespaced}
	}
	ri, ok = c.resources[key]
	if !ok {
		return resourceInfo{}, fmt.Errorf("the API server serves no kind %s in %s", kind, apiVersion)
	}
	return ri, nil
}

// getJSON GETs path from the API server and decodes the JSON answer into v.
func (c *Cluster) getJSON(ctx context.Context, path string, v any) error {
	client, err := rest.HTTPClientFor(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("http client: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Host+path, nil)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// postYAML creates the object in the YAML document body by POSTing it to
// path as is. An API error is returned as *apierrors.StatusError, so
// apierrors.IsAlreadyExists and friends work.
func (c *Cluster) postYAML(ctx context.Context, path string, body []byte) error {
	client, err := rest.HTTPClientFor(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("http client: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Host+path+"?fieldManager="+fieldManager, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer of POST %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		return nil
	}
	var status metav1.Status
	if json.Unmarshal(answer, &status) == nil && status.Kind == "Status" {
		return &apierrors.StatusError{ErrStatus: status}
	}
	return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(answer))
}

// DecodeManifests parses a stream of YAML or JSON documents (separated by
// "---") into objects, skipping empty documents.
func DecodeManifests(manifests string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode manifests: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// Apply server-side applies every object in manifests (YAML or JSON
// documents separated by "---"; namespaced objects without a namespace go
// to "default") with force, in order, and returns the objects as stored.
func (c *Cluster) Apply(t testing.TB, manifests string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := DecodeManifests(manifests)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	out, err := c.applyObjects(ctx, objs)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

func (c *Cluster) applyObjects(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	dyn, err := c.dynamic()
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		ri, err := c.resourceFor(ctx, obj.GetAPIVersion(), obj.GetKind())
		if err != nil {
			return nil, fmt.Errorf("apply %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		var res dynamic.ResourceInterface = dyn.Resource(ri.gvr)
		if ri.namespaced {
			if obj.GetNamespace() == "" {
				obj.SetNamespace("default")
			}
			res = dyn.Resource(ri.gvr).Namespace(obj.GetNamespace())
		}
		applied, err := res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		if err != nil {
			return nil, fmt.Errorf("apply %s %s: %w", obj.GetKind(), qualifiedName(obj.GetNamespace(), obj.GetName()), err)
		}
		out = append(out, applied)
	}
	return out, nil
}

// CreateNamespace creates a namespace with a generated name starting with
// prefix and returns the name; it is deleted (without waiting) in t.Cleanup.
// Tests sharing one cluster stay apart by working in their own namespace.
func (c *Cluster) CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"generateName": prefix + "-"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	res := c.Resource(t, "v1", "Namespace")
	created, err := res.Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testenv: create namespace %s-*: %v", prefix, err)
	}
	name := created.GetName()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
		defer cancel()
		if err := res.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("testenv: delete namespace %s: %v", name, err)
		}
	})
	return name
}

// WaitFor polls the object kind/name in namespace ("" for cluster-scoped
// kinds) every 100 ms until cond returns true and returns it; it fails the
// test with the last state seen after timeout. A missing object is passed to
// cond as nil.
func (c *Cluster) WaitFor(t testing.TB, apiVersion, kind, namespace, name string, cond func(*unstructured.Unstructured) bool, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	obj, err := c.waitFor(context.Background(), apiVersion, kind, namespace, name, cond, timeout)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return obj
}

func (c *Cluster) waitFor(ctx context.Context, apiVersion, kind, namespace, name string, cond func(*unstructured.Unstructured) bool, timeout time.Duration) (*unstructured.Unstructured, error) {
	ri, err := c.resourceFor(ctx, apiVersion, kind)
	if err != nil {
		return nil, err
	}
	dyn, err := c.dynamic()
	if err != nil {
		return nil, err
	}
	var res dynamic.ResourceInterface = dyn.Resource(ri.gvr)
	if ri.namespaced {
		res = dyn.Resource(ri.gvr).Namespace(namespace)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		last    *unstructured.Unstructured
		lastErr error
	)
	for {
		obj, err := res.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			last, lastErr = obj, nil
		case apierrors.IsNotFound(err):
			last, lastErr, obj = nil, nil, nil
		default:
			lastErr = err
		}
		if lastErr == nil && cond(obj) {
			return obj, nil
		}
		select {
		case <-ctx.Done():
			state := "not found"
			if last != nil {
				b, _ := json.MarshalIndent(last.Object, "", "  ")
				state = string(b)
			}
			if lastErr != nil {
				state += fmt.Sprintf(" (last error: %v)", lastErr)
			}
			return last, fmt.Errorf("%s %s did not reach the wanted state within %v; last seen: %s",
				kind, qualifiedName(namespace, name), timeout, state)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func qualifiedName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// PinnedDeployment is the manifest (without a namespace) of a one-replica
// Deployment name, selecting app=name, whose Pod is bound to the simulated
// kubelet's Node (so a kubelet without its scheduler part runs it) with one
// container "api" of image; extra adds fields to the container in YAML flow
// style, e.g. `command: ["false"]` for a crash loop.
func PinnedDeployment(name, image, extra string) string {
	container := fmt.Sprintf("name: api, image: %q", image)
	if extra != "" {
		container += ", " + extra
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      nodeName: %[2]s
      containers: [{%[3]s}]
`, name, SimulatedNodeName, container)
}
