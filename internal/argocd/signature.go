package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationTrustedKeys on an environment's AppProject holds its signature policy: a JSON object
// of PEM public keys by name. It lives with the environment in the cluster, so every caller that
// syncs the environment's Applications — the Terraform provider, `ferry app sync`, a fleet
// rollout — enforces the same policy.
const AnnotationTrustedKeys = "ferry.dev/trusted-keys"

// AnnotationRequiredAttestations holds the rest of the policy: a JSON list of the attestations
// (by name, "sbom", "provenance", or predicate type URI) that must be attested, by a trusted key,
// for the digest.
const AnnotationRequiredAttestations = "ferry.dev/required-attestations"

// BundleVerifier verifies that the bundle digest in repoURL (oci://host/repo) carries a signature
// by one of keys (PEM by name) and the attestations require names; its error
// says why not. The bundle package provides it (bundle.Verifier); the engine only calls it.
type BundleVerifier func(ctx context.Context, repoURL, digest string, keys map[string]string, require []string) error

func setSignaturePolicy(p *unstructured.Unstructured, keys map[string]string, require []string) error {
	a := p.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range map[string]any{AnnotationTrustedKeys: keys, AnnotationRequiredAttestations: require} {
		if k == AnnotationTrustedKeys && len(keys) == 0 || k == AnnotationRequiredAttestations && len(require) == 0 {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		a[k] = string(b)
	}
	if len(a) > 0 {
		p.SetAnnotations(a)
	}
	return nil
}

// SignaturePolicyOf returns the signature policy written on an environment's AppProject: trusted
// keys (nil: none, no policy) and required attestation predicate types.
func SignaturePolicyOf(project *unstructured.Unstructured) (keys map[string]string, require []string, err error) {
	ann := project.GetAnnotations()
	if v, ok := ann[AnnotationTrustedKeys]; ok {
		if err := json.Unmarshal([]byte(v), &keys); err != nil {
			return nil, nil, fmt.Errorf("AppProject %s: annotation %s is not a JSON object of PEM keys: %v", project.GetName(), AnnotationTrustedKeys, err)
		}
	}
	if v, ok := ann[AnnotationRequiredAttestations]; ok {
		if err := json.Unmarshal([]byte(v), &require); err != nil {
			return nil, nil, fmt.Errorf("AppProject %s: annotation %s is not a JSON list of attestation names: %v", project.GetName(), AnnotationRequiredAttestations, err)
		}
	}
	return keys, require, nil
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
	keys, require, err := SignaturePolicyOf(project)
	if err != nil {
		return &SyncError{Class: ClassPermanent, Summary: "Invalid signature policy", LastMessage: err.Error(),
			Advice: "Apply the environment again (ferry_environment's signature_policy) to rewrite it."}
	}
	if len(keys) == 0 {
		if len(require) > 0 {
			return &SyncError{Class: ClassPermanent, Summary: "Invalid signature policy: environment " + env + " requires attestations and trusts no key",
				Advice: "Add public_keys to the environment's signature_policy."}
		}
		return nil
	}
	if verify == nil {
		return &SyncError{Class: ClassPermanent, Summary: "Environment " + env + " requires signed bundles, and this caller cannot verify signatures",
			Advice: "Sync it with the Terraform provider or a ferry that verifies signatures."}
	}
	if err := verify(ctx, a.RepoURL, a.Digest, keys, require); err != nil {
		return &SyncError{Class: ClassPermanent, Summary: "Bundle signature not verified: environment " + env + " requires a signature by one of its trusted keys" + requiredText(require),
			LastMessage: err.Error(),
			Advice:      "Sign the bundle (ferry bundle push --sign-key KEY signs it and attaches its SBOM and provenance; ferry bundle sign REF --key KEY signs a pushed one), or add the key that signed it to the environment's signature_policy. The Application was not changed."}
	}
	return nil
}

func requiredText(require []string) string {
	if len(require) == 0 {
		return ""
	}
	return " and attestations " + strings.Join(require, ", ")
}
