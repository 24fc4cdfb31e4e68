package argocd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// CrashLoopRestarts is how many restarts of a container waiting in CrashLoopBackOff make ferry
// call the workload crash-looping and fail the sync, instead of waiting for Kubernetes' progress
// deadline (10 minutes by default) to turn Argo CD's health Degraded.
const CrashLoopRestarts = 3

// diagnoseEvery limits how often one wait looks at the Pods of the workloads Argo CD waits for.
const diagnoseEvery = 5 * time.Second

// PodProblem is why a workload's Pods cannot become ready without a change to the bundle.
type PodProblem struct {
	// Reason completes "Deployment ns/api is …": "crash-looping", "unable to pull its image",
	// "misconfigured".
	Reason string
	// Pod and Container name the container that shows it.
	Pod, Container string
	// Detail says what the kubelet reports, in a sentence.
	Detail string
}

// podProblem finds a container of pod that will not become ready by itself, from the reason the
// kubelet gives for its waiting state: one that crashed and was restarted at least
// CrashLoopRestarts times (CrashLoopBackOff), one whose image cannot be pulled
// (ImagePullBackOff: the kubelet backs off after a failed pull; ErrImagePull, one failed attempt
// that may have been a passing registry error, is left to the back-off that follows it), or one
// whose configuration stops it from being created (a missing Secret or ConfigMap:
// CreateContainerConfigError; an invalid image name: InvalidImageName).
func podProblem(pod map[string]any) *PodProblem {
	name, _, _ := unstructured.NestedString(pod, "metadata", "name")
	for _, field := range []string{"initContainerStatuses", "containerStatuses"} {
		statuses, _, _ := unstructured.NestedSlice(pod, "status", field)
		for _, s := range statuses {
			cs, ok := s.(map[string]any)
			if !ok {
				continue
			}
			container, _ := cs["name"].(string)
			reason, _, _ := unstructured.NestedString(cs, "state", "waiting", "reason")
			message, _, _ := unstructured.NestedString(cs, "state", "waiting", "message")
			restarts, _, _ := unstructured.NestedInt64(cs, "restartCount")
			switch reason {
			case "CrashLoopBackOff":
				if restarts < CrashLoopRestarts {
					continue
				}
				code, _, _ := unstructured.NestedInt64(cs, "lastState", "terminated", "exitCode")
				why, _, _ := unstructured.NestedString(cs, "lastState", "terminated", "reason")
				out, _, _ := unstructured.NestedString(cs, "lastState", "terminated", "message")
				detail := fmt.Sprintf("container %s of Pod %s exited with code %d (%s) and was restarted %d times", container, name, code, firstNonEmpty(why, "Error"), restarts)
				if out = strings.TrimSpace(out); out != "" {
					detail += ": " + out
				}
				return &PodProblem{Reason: "crash-looping", Pod: name, Container: container, Detail: detail}
			case "ImagePullBackOff", "ErrImageNeverPull":
				image, _ := cs["image"].(string)
				return &PodProblem{Reason: "unable to pull its image", Pod: name, Container: container,
					Detail: fmt.Sprintf("container %s of Pod %s cannot pull %s: %s", container, name, image, firstNonEmpty(message, reason))}
			case "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
				return &PodProblem{Reason: "misconfigured", Pod: name, Container: container,
					Detail: fmt.Sprintf("container %s of Pod %s cannot be created (%s): %s", container, name, reason, message)}
			}
		}
	}
	return nil
}

// workloadResources are the kinds whose Pods ferry looks at, by group/Kind, with their resource.
var workloadResources = map[string]schema.GroupVersionResource{
	"apps/Deployment":  {Group: "apps", Version: "v1", Resource: "deployments"},
	"apps/StatefulSet": {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"apps/DaemonSet":   {Group: "apps", Version: "v1", Resource: "daemonsets"},
	"apps/ReplicaSet":  {Group: "apps", Version: "v1", Resource: "replicasets"},
	"batch/Job":        {Group: "batch", Version: "v1", Resource: "jobs"},
	"/Pod":             podsGVR,
}

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// DiagnoseRollout looks at the Pods of app's workloads that may keep it from being Healthy
// (rolloutCandidates), in the destination cluster (reached with the credentials of Argo CD's cluster Secret,
// or ferry's own for Argo CD's cluster), and returns the first workload whose Pods cannot become
// ready by themselves, with why. It is best effort: a cluster it cannot reach or read gives nil.
func (c *Client) DiagnoseRollout(ctx context.Context, app *unstructured.Unstructured) (*Resource, *PodProblem) {
	if app == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var dest dynamic.Interface
	checked := 0
	for _, res := range rolloutCandidates(app) {
		gvr, workload := workloadResources[res.Group+"/"+res.Kind]
		if !workload {
			continue
		}
		if checked >= maxDiagnosed {
			break
		}
		checked++
		if dest == nil {
			var err error
			if dest, err = c.destination(ctx, app); err != nil {
				return nil, nil
			}
		}
		var pods []unstructured.Unstructured
		if gvr == podsGVR {
			p, err := dest.Resource(podsGVR).Namespace(res.Namespace).Get(ctx, res.Name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			pods = []unstructured.Unstructured{*p}
		} else {
			obj, err := dest.Resource(gvr).Namespace(res.Namespace).Get(ctx, res.Name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			selector, err := podSelector(obj)
			if err != nil {
				continue
			}
			list, err := dest.Resource(podsGVR).Namespace(res.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				continue
			}
			pods = currentPods(ctx, dest, obj, selector, list.Items)
		}
		for _, p := range pods {
			if prob := podProblem(p.Object); prob != nil {
				res.Message = prob.Detail
				return &res, prob
			}
		}
	}
	return nil, nil
}

// maxDiagnosed bounds the workloads one diagnosis looks at.
const maxDiagnosed = 10

// rolloutCandidates lists the workloads of app whose Pods may explain why it is not Healthy: the
// one a running operation waits for first, then every workload in status.resources not reported
// Healthy (Argo CD 3 no longer keeps resource health there by default, so most have none).
func rolloutCandidates(app *unstructured.Unstructured) []Resource {
	var out []Resource
	ns, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
	msg, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "message")
	if running, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase"); running == "Running" {
		for _, r := range waitingFor(msg, "waiting for healthy state of ", "Progressing") {
			r.Namespace = ns
			out = append(out, r)
		}
	}
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		health, _, _ := unstructured.NestedString(m, "health", "status")
		res := resourceOf(m, health)
		if _, workload := workloadResources[res.Group+"/"+res.Kind]; !workload || health == "Healthy" || health == "Suspended" {
			continue
		}
		if len(out) > 0 && out[0].Group == res.Group && out[0].Kind == res.Kind && out[0].Name == res.Name {
			out[0].Namespace = res.Namespace
			continue
		}
		out = append(out, res)
	}
	return out
}

// currentPods keeps the Pods of obj's current revision: a rollout that replaces crash-looping
// Pods of an earlier revision (the fix being deployed) is not itself crash-looping. For a
// Deployment they are the Pods of the ReplicaSet of its revision, for a StatefulSet those of its
// update revision; other kinds keep every Pod.
func currentPods(ctx context.Context, dest dynamic.Interface, obj *unstructured.Unstructured, selector string, pods []unstructured.Unstructured) []unstructured.Unstructured {
	label, value := "", ""
	switch obj.GetKind() {
	case "Deployment":
		revision := obj.GetAnnotations()[deploymentRevision]
		sets, err := dest.Resource(workloadResources["apps/ReplicaSet"]).Namespace(obj.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if revision == "" || err != nil {
			return pods
		}
		for _, rs := range sets.Items {
			if rs.GetAnnotations()[deploymentRevision] == revision && metav1.IsControlledBy(&rs, obj) {
				label, value = "pod-template-hash", rs.GetLabels()["pod-template-hash"]
			}
		}
	case "StatefulSet":
		label = "controller-revision-hash"
		value, _, _ = unstructured.NestedString(obj.Object, "status", "updateRevision")
	}
	if value == "" {
		return pods
	}
	var out []unstructured.Unstructured
	for _, p := range pods {
		if p.GetLabels()[label] == value {
			out = append(out, p)
		}
	}
	return out
}

// deploymentRevision is the annotation the deployment controller numbers revisions with, on the
// Deployment and on each of its ReplicaSets.
const deploymentRevision = "deployment.kubernetes.io/revision"

// podSelector returns a workload's spec.selector as a label selector string.
func podSelector(obj *unstructured.Unstructured) (string, error) {
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "selector")
	if err != nil || !found {
		return "", errors.New("no spec.selector")
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return "", err
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return "", err
	}
	if sel.Empty() {
		return "", errors.New("empty selector")
	}
	return sel.String(), nil
}

// destinations caches a dynamic client per destination cluster.
type destinations struct {
	mu      sync.Mutex
	clients map[string]dynamic.Interface
}

// destination returns a client for the cluster app deploys to: ferry's own for Argo CD's cluster,
// else one built from Argo CD's cluster Secret for it (bearer token or client certificate; a
// Secret using exec, AWS or GCP authentication is not supported).
func (c *Client) destination(ctx context.Context, app *unstructured.Unstructured) (dynamic.Interface, error) {
	server, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "server")
	name, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "name")
	if server == InClusterServer || name == "in-cluster" {
		return c.dyn, nil
	}
	if c.cfg == nil {
		return nil, errors.New("no client configuration for destination clusters")
	}
	key := server + "\x00" + name
	c.dests.mu.Lock()
	defer c.dests.mu.Unlock()
	if d, ok := c.dests.clients[key]; ok {
		return d, nil
	}
	// The cluster Secret ferry wrote for the application's environment first (one small list,
	// whatever the size of the fleet); every cluster Secret only when the environment has none that
	// matches (a cluster Secret another tool wrote, an Application outside ferry's environments).
	env := ProjectEnvironment(str(app.Object, "spec", "project"))
	for _, selector := range []string{LabelSecretType + "=cluster," + LabelEnvironment + "=" + env, LabelSecretType + "=cluster"} {
		list, err := c.res(SecretGVR).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			data := secretData(&list.Items[i])
			if (server != "" && strings.TrimSuffix(data["server"], "/") == strings.TrimSuffix(server, "/")) || (server == "" && data["name"] == name) {
				cfg, err := clusterRESTConfig(data)
				if err != nil {
					return nil, err
				}
				cfg.UserAgent = c.cfg.UserAgent // ferry's, with its version
				d, err := dynamic.NewForConfig(cfg)
				if err != nil {
					return nil, err
				}
				if c.dests.clients == nil {
					c.dests.clients = map[string]dynamic.Interface{}
				}
				c.dests.clients[key] = d
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("no cluster Secret for %s", firstNonEmpty(server, name))
}

// clusterRESTConfig builds a client configuration from the data of an Argo CD cluster Secret.
func clusterRESTConfig(data map[string]string) (*rest.Config, error) {
	cfg, err := parseClusterConfig(data["config"])
	if err != nil {
		return nil, err
	}
	if len(cfg.Exec) > 0 || len(cfg.AWS) > 0 {
		return nil, errors.New("cluster Secret uses exec or AWS authentication")
	}
	return &rest.Config{
		Host: data["server"], BearerToken: cfg.BearerToken, Username: cfg.Username, Password: cfg.Password,
		TLSClientConfig: rest.TLSClientConfig{Insecure: cfg.TLS.Insecure, ServerName: cfg.TLS.ServerName,
			CAData: cfg.TLS.CAData, CertData: cfg.TLS.CertData, KeyData: cfg.TLS.KeyData},
		UserAgent: "ferry", QPS: 20, Burst: 40, Timeout: 10 * time.Second,
	}, nil
}

// rolloutWatch runs DiagnoseRollout at most every diagnoseEvery during one wait.
type rolloutWatch struct {
	c    *Client
	last time.Time
}

// failure returns the permanent failure of a workload of app whose Pods cannot become ready, or
// nil. rid is ferry's request id, if any.
func (w *rolloutWatch) failure(ctx context.Context, app *unstructured.Unstructured, now time.Time, rid string) *SyncError {
	if now.Sub(w.last) < diagnoseEvery {
		return nil
	}
	w.last = now
	res, prob := w.c.DiagnoseRollout(ctx, app)
	if prob == nil {
		return nil
	}
	resources := []Resource{*res}
	for _, r := range failingResources(app) {
		if r.Kind != res.Kind || r.Name != res.Name || r.Namespace != res.Namespace {
			resources = append(resources, r)
		}
	}
	what := res.Kind + " " + res.Name
	if res.Namespace != "" {
		what = res.Kind + " " + res.Namespace + "/" + res.Name
	}
	advice := "Fix the image or its configuration in the bundle, push and apply again."
	if prob.Reason == "crash-looping" {
		advice = fmt.Sprintf("See its output with `kubectl -n %s logs %s -c %s --previous`. ", res.Namespace, prob.Pod, prob.Container) + advice
	}
	return &SyncError{Class: ClassPermanent, Summary: fmt.Sprintf("Sync failed: %s is %s", what, prob.Reason),
		LastMessage: prob.Detail, Resources: resources, RequestID: rid, Advice: advice}
}
