package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationTrustedKeys on an environment's AppProject holds its signature policy: a JSON object
// of PEM public keys by name. It lives with the environment in the cluster, so every caller that
// syncs the environment's Applications — the Terraform provider, `ferry app sync`, a fleet
// rollout — enforces the same policy.
const AnnotationTrustedKeys = "ferry.dev/trusted-keys"

// BundleVerifier verifies that the bundle digest in repoURL (oci://host/repo) carries a signature
// by one of keys (PEM by name); its error says why not. The bundle package provides it
// (bundle.Verifier); the engine only calls it.
type BundleVerifier func(ctx context.Context, repoURL, digest string, keys map[string]string) error

func setTrustedKeys(p *unstructured.Unstructured, keys map[string]string) error {
	if len(keys) == 0 {
		return nil
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	a := p.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationTrustedKeys] = string(b)
	p.SetAnnotations(a)
	return nil
}

// TrustedKeysOf returns the signature policy written on an environment's AppProject (nil: none).
func TrustedKeysOf(project *unstructured.Unstructured) (map[string]string, error) {
	v, ok := project.GetAnnotations()[AnnotationTrustedKeys]
	if !ok {
		return nil, nil
	}
	var keys map[string]string
	if err := json.Unmarshal([]byte(v), &keys); err != nil {
		return nil, fmt.Errorf("AppProject %s: annotation %s is not a JSON object of PEM keys: %v", project.GetName(), AnnotationTrustedKeys, err)
	}
	return keys, nil
}

// CheckSignaturePolicy verifies a's bundle digest with verify when its environment has a
// signature policy; an environment that does not exist yet has none. Sync calls it before it
// writes anything; the provider also calls it at plan time. The error is a *SyncError of class
// permanent.
func (c *Client) CheckSignaturePolicy(ctx context.Context, a App, verify BundleVerifier) error {
	env := ProjectEnvironment(a.Project)
	project, err := c.GetProject(ctx, env)
	if errors.Is(err, ErrNotFound) {
		return nil // reported by the sync itself, with what to do
	}
	if err != nil {
		return err
	}
	return checkPolicy(ctx, project, a, verify)
}

// checkPolicy is CheckSignaturePolicy with the environment's project already read.
func checkPolicy(ctx context.Context, project *unstructured.Unstructured, a App, verify BundleVerifier) error {
	env := ProjectEnvironment(a.Project)
	keys, err := TrustedKeysOf(project)
	if err != nil {
		return &SyncError{Class: ClassPermanent, Summary: "Invalid signature policy", LastMessage: err.Error(),
			Advice: "Apply the environment again (ferry_environment's signature_policy) to rewrite it."}
	}
	if len(keys) == 0 {
		return nil
	}
	if verify == nil {
		return &SyncError{Class: ClassPermanent, Summary: "Environment " + env + " requires signed bundles, and this caller cannot verify signatures",
			Advice: "Sync it with the Terraform provider or a ferry that verifies signatures."}
	}
	if err := verify(ctx, a.RepoURL, a.Digest, keys); err != nil {
		return &SyncError{Class: ClassPermanent, Summary: "Bundle signature not verified: environment " + env + " requires a signature by one of its trusted keys",
			LastMessage: err.Error(),
			Advice:      "Sign the bundle (ferry bundle sign REF --key KEY, or push with --sign-key), or add the key that signed it to the environment's signature_policy. The Application was not changed."}
	}
	return nil
}
