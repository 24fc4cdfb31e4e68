package argocd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// InClusterServer is the address of Argo CD's own cluster.
const InClusterServer = "https://kubernetes.default.svc"

// FrozenWindowDescription marks the deny window that freezes an environment.
const FrozenWindowDescription = "ferry: environment frozen"

// ErrInUse is returned by [Client.DeleteEnvironment] while Applications still use the project.
var ErrInUse = errors.New("environment is in use")

// Environment is one customer: its cluster, allowed namespaces and sources, and deployment windows.
type Environment struct {
	Name               string
	Description        string
	Labels             map[string]string
	Cluster            Cluster
	Namespaces         []string
	SourceRepositories []string
	// ClusterResources are the cluster-scoped kinds the project may deploy, as "Kind" (core group)
	// or "group/Kind".
	ClusterResources    []string
	RegistryCredentials *RegistryCredentials
	Windows             []window.Spec
	Frozen              bool
	// TrustedKeys is the environment's signature policy: PEM public keys by name. When set, every
	// sync of the environment's Applications first verifies the bundle digest's signature
	// (SyncOptions.VerifyBundle); docs/signing.md.
	TrustedKeys map[string]string
	// RequiredAttestations are the attestations the policy also requires ("sbom", "provenance" or
	// a predicate type URI), each signed by a trusted key for the digest (needs TrustedKeys).
	RequiredAttestations []string
}

// Cluster is the customer's cluster as Argo CD reaches it.
type Cluster struct {
	// InCluster selects Argo CD's own cluster; no cluster Secret is written.
	InCluster   bool
	Server      string
	Name        string
	BearerToken string
	CAData      string // PEM
	Insecure    bool
}

// RegistryCredentials let Argo CD pull bundles from an OCI registry.
type RegistryCredentials struct {
	URL       string // oci://host[/repo]
	Username  string
	Password  string
	PlainHTTP bool
}

// ClusterSecretName returns the name of an environment's cluster Secret.
func ClusterSecretName(env string) string { return "ferry-cluster-" + env }

// RepositorySecretName returns the name of an environment's repository Secret.
func RepositorySecretName(env string) string { return "ferry-repo-" + env }

// Server returns the destination server URL of the environment's cluster.
func (e Environment) Server() string {
	if e.Cluster.InCluster {
		return InClusterServer
	}
	return strings.TrimSuffix(e.Cluster.Server, "/")
}

// ClusterName returns the Argo CD name of the environment's cluster.
func (e Environment) ClusterName() string {
	if e.Cluster.InCluster {
		return "in-cluster"
	}
	if e.Cluster.Name != "" {
		return e.Cluster.Name
	}
	return e.Name
}

// ProjectWindows returns the AppProject syncWindows for the environment's windows, plus an
// always-active deny window when it is frozen. Every window applies to every application of the
// project.
func (e Environment) ProjectWindows() []any {
	out := []any{}
	for _, w := range e.Windows {
		sw := map[string]any{
			"kind":         w.Kind,
			"schedule":     w.Schedule,
			"duration":     w.Duration,
			"manualSync":   w.ManualSync,
			"applications": []any{"*"},
		}
		if w.TimeZone != "" {
			sw["timeZone"] = w.TimeZone
		}
		if w.Description != "" {
			sw["description"] = w.Description
		}
		out = append(out, sw)
	}
	if e.Frozen {
		out = append(out, map[string]any{
			"kind": "deny", "schedule": "* * * * *", "duration": "1h", "manualSync": false,
			"applications": []any{"*"}, "description": FrozenWindowDescription,
		})
	}
	return out
}

// EffectiveWindows returns the windows ferry evaluates for the environment, the freeze included.
func (e Environment) EffectiveWindows() []window.Spec {
	ws := slices.Clone(e.Windows)
	if e.Frozen {
		ws = append(ws, window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Description: FrozenWindowDescription})
	}
	return ws
}

func (e Environment) labels() map[string]string {
	l := map[string]string{LabelEnvironment: e.Name}
	for k, v := range e.Labels {
		l[k] = v
	}
	return l
}

// ApplyEnvironment writes the environment's AppProject, cluster Secret and (when credentials are
// given) repository Secret with server-side apply, and removes a repository Secret ferry wrote
// earlier when credentials are gone. Fields written by other managers are left alone; a key ferry
// wrote into a Secret earlier and no longer wants (plain_http turned off) is removed
// ([Client.applySecret]).
func (c *Client) ApplyEnvironment(ctx context.Context, e Environment) error {
	if !e.Cluster.InCluster {
		cfg := map[string]any{"tlsClientConfig": map[string]any{"insecure": e.Cluster.Insecure}}
		if e.Cluster.BearerToken != "" {
			cfg["bearerToken"] = e.Cluster.BearerToken
		}
		if e.Cluster.CAData != "" {
			cfg["tlsClientConfig"].(map[string]any)["caData"] = base64.StdEncoding.EncodeToString([]byte(e.Cluster.CAData))
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		data := map[string]string{"name": e.ClusterName(), "server": e.Server(), "project": e.Name, "config": string(raw)}
		if err := c.applySecret(ctx, ClusterSecretName(e.Name), "cluster", e.labels(), data); err != nil {
			return err
		}
	} else if err := c.deleteManagedSecret(ctx, ClusterSecretName(e.Name)); err != nil {
		return err
	}

	if r := e.RegistryCredentials; r != nil {
		data := map[string]string{"type": "oci", "url": r.URL, "project": e.Name}
		if r.Username != "" || r.Password != "" {
			data["username"], data["password"] = r.Username, r.Password
		}
		if r.PlainHTTP {
			data["insecureOCIForceHttp"] = "true"
		}
		if err := c.applySecret(ctx, RepositorySecretName(e.Name), "repository", e.labels(), data); err != nil {
			return err
		}
	} else if err := c.deleteManagedSecret(ctx, RepositorySecretName(e.Name)); err != nil {
		return err
	}

	p := newObject("argoproj.io/v1alpha1", "AppProject", e.Name, e.labels())
	if err := setSignaturePolicy(p, e.TrustedKeys, e.RequiredAttestations); err != nil {
		return err
	}
	dests := []any{}
	for _, ns := range e.Namespaces {
		dests = append(dests, map[string]any{"server": e.Server(), "namespace": ns})
	}
	repos := []any{}
	for _, r := range e.SourceRepositories {
		repos = append(repos, r)
	}
	clusterRes := []any{}
	for _, k := range e.ClusterResources {
		group, kind := "", k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			group, kind = k[:i], k[i+1:]
		}
		clusterRes = append(clusterRes, map[string]any{"group": group, "kind": kind})
	}
	spec := map[string]any{
		"description":              e.Description,
		"destinations":             dests,
		"sourceRepos":              repos,
		"clusterResourceWhitelist": clusterRes,
		"syncWindows":              e.ProjectWindows(),
	}
	p.Object["spec"] = spec
	_, err := c.apply(ctx, AppProjectGVR, p)
	return err
}

func (c *Client) deleteManagedSecret(ctx context.Context, name string) error {
	s, err := c.get(ctx, SecretGVR, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.GetLabels()[LabelManagedBy] != ManagedByFerry {
		return nil
	}
	return c.del(ctx, SecretGVR, name, metav1.DeleteOptions{})
}

// LiveEnvironment is what the cluster holds for an environment.
type LiveEnvironment struct {
	Environment
	// ClusterSecret and RepositorySecret are the names of the Secrets found, "" when missing.
	ClusterSecret    string
	RepositorySecret string
}

// ReadEnvironment reads the live AppProject and Secrets of an environment, the secrets they hold
// (Cluster.BearerToken, RegistryCredentials.Password) included, for comparison: callers must not
// store or print them. A missing AppProject is ErrNotFound.
func (c *Client) ReadEnvironment(ctx context.Context, name string) (*LiveEnvironment, error) {
	p, err := c.get(ctx, AppProjectGVR, name)
	if err != nil {
		return nil, err
	}
	live := &LiveEnvironment{Environment: Environment{Name: name}}
	e := &live.Environment
	e.Description, _, _ = unstructured.NestedString(p.Object, "spec", "description")
	if e.TrustedKeys, e.RequiredAttestations, err = SignaturePolicyOf(p); err != nil {
		return nil, err
	}
	e.Labels = map[string]string{}
	for k, v := range p.GetLabels() {
		if k != LabelManagedBy && k != LabelEnvironment {
			e.Labels[k] = v
		}
	}
	e.SourceRepositories, _, _ = unstructured.NestedStringSlice(p.Object, "spec", "sourceRepos")
	dests, _, _ := unstructured.NestedSlice(p.Object, "spec", "destinations")
	server := ""
	for _, d := range dests {
		if m, ok := d.(map[string]any); ok {
			ns, _ := m["namespace"].(string)
			e.Namespaces = append(e.Namespaces, ns)
			if s, _ := m["server"].(string); s != "" {
				server = s
			}
		}
	}
	crs, _, _ := unstructured.NestedSlice(p.Object, "spec", "clusterResourceWhitelist")
	for _, cr := range crs {
		if m, ok := cr.(map[string]any); ok {
			g, _ := m["group"].(string)
			k, _ := m["kind"].(string)
			if g != "" {
				k = g + "/" + k
			}
			e.ClusterResources = append(e.ClusterResources, k)
		}
	}
	// The windows are read as they are: their scopes are not part of the environment (ferry writes
	// applications ["*"]), so a glob someone else wrote is for the sync's window check to refuse.
	windows, _ := ProjectWindows(p)
	for _, w := range windows {
		if w.Description == FrozenWindowDescription && w.Kind == "deny" {
			e.Frozen = true
			continue
		}
		e.Windows = append(e.Windows, w)
	}

	e.Cluster = Cluster{InCluster: server == InClusterServer, Server: server}
	if s, err := c.get(ctx, SecretGVR, ClusterSecretName(name)); err == nil {
		live.ClusterSecret = s.GetName()
		data := secretData(s)
		e.Cluster.Server = data["server"]
		e.Cluster.Name = data["name"]
		cfg, _ := parseClusterConfig(data["config"])
		e.Cluster.Insecure = cfg.TLS.Insecure
		e.Cluster.CAData = string(cfg.TLS.CAData)
		e.Cluster.BearerToken = cfg.BearerToken
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if s, err := c.get(ctx, SecretGVR, RepositorySecretName(name)); err == nil {
		live.RepositorySecret = s.GetName()
		data := secretData(s)
		e.RegistryCredentials = &RegistryCredentials{URL: data["url"], Username: data["username"], Password: data["password"], PlainHTTP: data["insecureOCIForceHttp"] == "true"}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return live, nil
}

func secretData(s *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	data, _, _ := unstructured.NestedStringMap(s.Object, "data")
	for k, v := range data {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			out[k] = string(b)
		}
	}
	return out
}

// ApplicationsUsing returns the names of the Applications whose project is name, sorted. It lists
// only the Applications labelled with the project's environment (LabelEnvironment, which every
// Application ferry writes carries), so its cost follows the environment, not the fleet: an
// Application another tool wrote into the project without the label is not seen.
func (c *Client) ApplicationsUsing(ctx context.Context, project string) ([]string, error) {
	byProject, err := c.environmentApplications(ctx, ProjectEnvironment(project))
	if err != nil {
		return nil, err
	}
	return byProject[project], nil
}

// environmentApplications lists the Applications labelled with environment env, page by page, and
// returns their names by project, sorted.
func (c *Client) environmentApplications(ctx context.Context, env string) (map[string][]string, error) {
	items, err := c.list(ctx, ApplicationGVR, LabelEnvironment+"="+env)
	if err != nil {
		return nil, fmt.Errorf("applications of environment %s: %w", env, err)
	}
	out := map[string][]string{}
	for _, a := range items {
		p, _, _ := unstructured.NestedString(a.Object, "spec", "project")
		out[p] = append(out[p], a.GetName())
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}

// listPage is the page size of ferry's lists (metav1.ListOptions.Limit).
const listPage = 500

// DeleteEnvironment deletes the environment's AppProject, its override project and the Secrets
// ferry wrote for it. It refuses with ErrInUse, naming them, while Applications labelled with the
// environment (LabelEnvironment: every Application ferry writes) still use either project; an
// Application without the label is not seen.
func (c *Client) DeleteEnvironment(ctx context.Context, name string) error {
	// One list of the environment's Applications: those in its project, and those an interrupted
	// override left in the override project, which are the environment's too.
	byProject, err := c.environmentApplications(ctx, name)
	if err != nil {
		return err
	}
	apps := append(byProject[name], byProject[OverrideProjectName(name)]...)
	if len(apps) > 0 {
		return fmt.Errorf("environment %s: %w by %d application(s): %s", name, ErrInUse, len(apps), strings.Join(apps, ", "))
	}
	if err := c.del(ctx, AppProjectGVR, name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := c.del(ctx, AppProjectGVR, OverrideProjectName(name), metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := c.deleteManagedSecret(ctx, RepositorySecretName(name)); err != nil {
		return err
	}
	return c.deleteManagedSecret(ctx, ClusterSecretName(name))
}

// ProjectServer returns the destination server an application of project deploying to namespace
// uses: the server of the project's destination for that namespace. It errors when the project
// does not exist or does not allow the namespace.
func (c *Client) ProjectServer(ctx context.Context, project, namespace string) (string, error) {
	p, err := c.get(ctx, AppProjectGVR, project)
	if err != nil {
		return "", fmt.Errorf("environment %q: %w", project, err)
	}
	dests, _, _ := unstructured.NestedSlice(p.Object, "spec", "destinations")
	var allowed []string
	for _, d := range dests {
		m, ok := d.(map[string]any)
		if !ok {
			continue
		}
		ns, _ := m["namespace"].(string)
		server, _ := m["server"].(string)
		allowed = append(allowed, ns)
		if ok, _ := path.Match(ns, namespace); ok && server != "" {
			return server, nil
		}
	}
	return "", fmt.Errorf("environment %q does not allow namespace %q (allowed: %s)", project, namespace, strings.Join(allowed, ", "))
}

// clusterConfig is the "config" of an Argo CD cluster Secret, as far as ferry
// reads it.
type clusterConfig struct {
	BearerToken string `json:"bearerToken"`
	Username    string `json:"username"`
	Password    string `json:"password"`
	TLS         struct {
		Insecure   bool   `json:"insecure"`
		ServerName string `json:"serverName"`
		CAData     []byte `json:"caData"` // base64 in the JSON
		CertData   []byte `json:"certData"`
		KeyData    []byte `json:"keyData"`
	} `json:"tlsClientConfig"`
	Exec json.RawMessage `json:"execProviderConfig"`
	AWS  json.RawMessage `json:"awsAuthConfig"`
}

func parseClusterConfig(raw string) (clusterConfig, error) {
	var cfg clusterConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return cfg, fmt.Errorf("cluster Secret config: %w", err)
	}
	return cfg, nil
}

// ListProjects returns the AppProjects that selector (a label selector, "" for all) selects, read
// page by page (Limit 500 and the continue token): one request per 500 projects. Their
// metadata.managedFields are left out.
func (c *Client) ListProjects(ctx context.Context, selector string) ([]unstructured.Unstructured, error) {
	return c.list(ctx, AppProjectGVR, selector)
}

// ListApplications returns the Applications that selector (a label selector, "" for all)
// selects, read page by page (Limit 500 and the continue token): one request per 500
// Applications. Their metadata.managedFields are left out.
func (c *Client) ListApplications(ctx context.Context, selector string) ([]unstructured.Unstructured, error) {
	return c.list(ctx, ApplicationGVR, selector)
}

// list reads every object of gvr that selector selects, page by page; Applications and
// AppProjects without metadata.managedFields (listFast).
func (c *Client) list(ctx context.Context, gvr schema.GroupVersionResource, selector string) ([]unstructured.Unstructured, error) {
	if c.raw != nil && fastListed(gvr) {
		return c.listFast(ctx, gvr, selector)
	}
	opts := metav1.ListOptions{LabelSelector: selector, Limit: listPage}
	var out []unstructured.Unstructured
	for {
		l, err := c.res(gvr).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		out = append(out, l.Items...)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}
