package bundle

import (
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
)

// Verification failures, each its own exit code in `ferry bundle verify` (docs/signing.md).
var (
	// ErrUnsigned: the bundle has no signature at all.
	ErrUnsigned = errors.New("bundle is not signed")
	// ErrBadSignature: a signature names a trusted key but does not verify with it (tampered).
	ErrBadSignature = errors.New("signature does not verify")
	// ErrUntrustedKey: the bundle is signed, but by no trusted key.
	ErrUntrustedKey = errors.New("bundle is signed by no trusted key")
	// ErrSignatureDigest: a signature by a trusted key is for another digest (copied onto this bundle).
	ErrSignatureDigest = errors.New("signature is for another digest")
	// ErrMissingAttestation: signed, but a required attestation is not there, signed by a trusted key.
	ErrMissingAttestation = errors.New("required attestation missing")
)

// TrustedKey is a public key whose signatures are accepted.
type TrustedKey struct {
	// Name says which key it is in results and errors: a file name, or a policy's key name.
	Name string
	key  crypto.PublicKey
	hint string
}

// ParseTrustedKey parses a PEM public key (cosign.pub).
func ParseTrustedKey(name string, pemBytes []byte) (TrustedKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trusted key %s: %v (want a PEM public key, as cosign.pub)", name, err)
	}
	hint, err := keyHint(pub)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trusted key %s: %v", name, err)
	}
	return TrustedKey{Name: name, key: pub, hint: hint}, nil
}

// LoadTrustedKeys reads PEM public key files.
func LoadTrustedKeys(paths ...string) ([]TrustedKey, error) {
	var keys []TrustedKey
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("trusted key: %w", err)
		}
		k, err := ParseTrustedKey(p, b)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Signature is a verified signature of a bundle.
type Signature struct {
	// Key is the name of the trusted key it verified with.
	Key string `json:"key"`
	// Referrer is the digest of the referrer manifest that holds it.
	Referrer string `json:"referrer"`
	// PredicateType is the signed statement's predicate type (PredicateCosignSign for a signature).
	PredicateType string `json:"predicateType"`
	// Created is the referrer's creation time annotation.
	Created string `json:"created,omitempty"`
}

// VerifyResult is the outcome of a successful verification.
type VerifyResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Signatures are the signatures that verified with a trusted key.
	Signatures []Signature `json:"signatures"`
	// Attestations are the attestations (SBOM, provenance, ...) that verified with a trusted key.
	Attestations []Signature `json:"attestations"`
}

// VerifyError is a failed verification: Class is one of ErrUnsigned, ErrBadSignature,
// ErrUntrustedKey, ErrSignatureDigest and ErrMissingAttestation, Reasons say what each signed
// referrer found was.
type VerifyError struct {
	Reference, Digest string
	Class             error
	Reasons           []string
}

func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("%s@%s: %v", e.Reference, e.Digest, e.Class)
	if len(e.Reasons) > 0 {
		msg += ": " + strings.Join(e.Reasons, "; ")
	}
	return msg
}

func (e *VerifyError) Unwrap() error { return e.Class }

// verified remembers digests verified in this process with a key set: verifying one again costs
// no registry request.
var verified sync.Map // verifiedKey -> *VerifyResult

// maxSignatureReferrers bounds the signature and attestation referrers one verification reads.
const maxSignatureReferrers = 64

type verifiedKey struct{ repo, digest, keys, require string }

// Verify checks that the bundle ref names (a tag is resolved first: the digest it points at now is
// what is verified) has a signature by one of keys: a referrer holding a Sigstore bundle whose
// DSSE statement is a signature (PredicateCosignSign) of exactly this digest, signed by a trusted
// key. Attestations (other predicate types) do not count as signatures; each predicate type in
// require (see [AttestationType]) must be attested for this digest by a trusted key. A digest
// verified before in this process with the same keys and requirements costs no request. The
// error is a *VerifyError, or a registry error.
func Verify(ctx context.Context, c *Client, ref Reference, keys []TrustedKey, require ...string) (*VerifyResult, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("verify %s: no trusted key: give at least one public key", ref)
	}
	src, err := c.target(ref, false)
	if err != nil {
		return nil, err
	}
	wrap := func(what string, err error) error {
		return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: %s", ref, what), err)
	}
	var subject ocispec.Descriptor
	var names []string
	for _, k := range keys {
		names = append(names, k.hint)
	}
	require = slices.Compact(slices.Sorted(slices.Values(require)))
	cacheKey := verifiedKey{repo: ref.Name(), digest: ref.Digest, keys: strings.Join(names, ","), require: strings.Join(require, ",")}
	if ref.Digest != "" {
		if r, ok := verified.Load(cacheKey); ok {
			return r.(*VerifyResult), nil
		}
	}
	if err := c.retry(ctx, func() (err error) {
		subject, err = src.Resolve(ctx, ref.Ref())
		return err
	}); err != nil {
		return nil, wrap("resolve", err)
	}
	cacheKey.digest = subject.Digest.String()
	if r, ok := verified.Load(cacheKey); ok {
		return r.(*VerifyResult), nil
	}
	var referrers []ocispec.Descriptor
	if err := c.retry(ctx, func() (err error) {
		graph, ok := src.(content.ReadOnlyGraphStorage)
		if !ok {
			return fmt.Errorf("%s cannot list referrers", ref)
		}
		referrers, err = registry.Referrers(ctx, graph, subject, MediaTypeSigstoreBundle)
		return err
	}); err != nil {
		return nil, wrap("list signatures", err)
	}
	if len(referrers) > maxSignatureReferrers {
		// A hostile registry cannot make verification fetch without end.
		return nil, &VerifyError{Reference: ref.Name(), Digest: subject.Digest.String(), Class: ErrBadSignature,
			Reasons: []string{fmt.Sprintf("%d Sigstore bundle referrers, more than the %d verification reads", len(referrers), maxSignatureReferrers)}}
	}
	res := &VerifyResult{Reference: ref.Name(), Digest: subject.Digest.String(), Signatures: []Signature{}, Attestations: []Signature{}}
	verr := &VerifyError{Reference: ref.Name(), Digest: subject.Digest.String(), Class: ErrUnsigned}
	var attestationReasons []string
	rank := map[error]int{ErrUnsigned: 0, ErrUntrustedKey: 1, ErrBadSignature: 2, ErrSignatureDigest: 3}
	for _, r := range referrers {
		chk, err := checkSignature(ctx, c, src, subject, r, keys)
		if err != nil {
			return nil, wrap("fetch signature "+r.Digest.String(), err)
		}
		isSignature := chk.predicateType == PredicateCosignSign
		switch {
		case chk.sig != nil && isSignature:
			res.Signatures = append(res.Signatures, *chk.sig)
		case chk.sig != nil:
			res.Attestations = append(res.Attestations, *chk.sig)
		case isSignature || chk.predicateType == "":
			verr.Reasons = append(verr.Reasons, fmt.Sprintf("referrer %s: %s", r.Digest, chk.reason))
			if rank[chk.class] > rank[verr.Class] {
				verr.Class = chk.class
			}
		default:
			attestationReasons = append(attestationReasons, fmt.Sprintf("%s attestation %s: %s", chk.predicateType, r.Digest, chk.reason))
		}
	}
	if len(res.Signatures) == 0 {
		return nil, verr
	}
	var missing []string
	for _, t := range require {
		if !slices.ContainsFunc(res.Attestations, func(a Signature) bool { return a.PredicateType == t }) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, &VerifyError{Reference: ref.Name(), Digest: subject.Digest.String(), Class: ErrMissingAttestation,
			Reasons: append([]string{"no " + strings.Join(missing, ", no ") + " attestation signed by a trusted key"}, attestationReasons...)}
	}
	verified.Store(cacheKey, res)
	return res, nil
}

// signatureCheck is what one referrer is: a statement of predicateType that verified (sig), or
// one that failed (class and reason; predicateType empty when it could not be read).
type signatureCheck struct {
	sig           *Signature
	predicateType string
	class         error
	reason        string
}

func failed(class error, reason string) (signatureCheck, error) {
	return signatureCheck{class: class, reason: reason}, nil
}

// checkSignature verifies one referrer; err is a registry error.
func checkSignature(ctx context.Context, c *Client, src oras.ReadOnlyTarget, subject, r ocispec.Descriptor, keys []TrustedKey) (signatureCheck, error) {
	if r.Size > maxSignatureManifestBytes {
		return failed(ErrBadSignature, fmt.Sprintf("manifest of %d bytes", r.Size))
	}
	raw, err := c.fetchSmall(ctx, src, r)
	if err != nil {
		return signatureCheck{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 || !strings.HasPrefix(m.Layers[0].MediaType, "application/vnd.dev.sigstore.bundle") {
		return failed(ErrBadSignature, "not a manifest with one Sigstore bundle layer")
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest {
		return failed(ErrSignatureDigest, "its subject is another manifest")
	}
	if m.Layers[0].Size > maxSigstoreBundleLayerSize {
		return failed(ErrBadSignature, fmt.Sprintf("Sigstore bundle of %d bytes", m.Layers[0].Size))
	}
	layer, err := c.fetchSmall(ctx, src, m.Layers[0])
	if err != nil {
		return signatureCheck{}, err
	}
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(layer); err != nil {
		return failed(ErrBadSignature, fmt.Sprintf("not a Sigstore bundle: %v", err))
	}
	env, err := b.Envelope()
	if err != nil {
		return failed(ErrBadSignature, "no DSSE envelope: "+err.Error())
	}
	stmt, err := env.Statement()
	if err != nil {
		return failed(ErrBadSignature, "no in-toto statement: "+err.Error())
	}
	pt := stmt.GetPredicateType()
	fail := func(class error, reason string) (signatureCheck, error) {
		return signatureCheck{predicateType: pt, class: class, reason: reason}, nil
	}
	hint := b.GetVerificationMaterial().GetPublicKey().GetHint()
	rawDigest, _ := hex.DecodeString(subject.Digest.Encoded())
	signedFor := ""
	for _, s := range stmt.GetSubject() {
		signedFor = "sha256:" + s.GetDigest()["sha256"]
	}
	var keyMatched bool
	for _, k := range keys {
		if hint != "" && hint != k.hint {
			continue
		}
		keyMatched = true
		v, err := signature.LoadDefaultVerifier(k.key)
		if err != nil {
			return fail(ErrBadSignature, fmt.Sprintf("key %s: %v", k.Name, err))
		}
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
		})
		verifier, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
		if err != nil {
			return signatureCheck{}, err
		}
		if _, err := verifier.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", rawDigest), verify.WithKey())); err == nil {
			return signatureCheck{predicateType: pt, sig: &Signature{Key: k.Name, Referrer: r.Digest.String(), PredicateType: pt, Created: m.Annotations[ocispec.AnnotationCreated]}}, nil
		}
		// Signed for another digest? Verify it against the digest it names.
		if d, err := hex.DecodeString(strings.TrimPrefix(signedFor, "sha256:")); err == nil && signedFor != subject.Digest.String() {
			if _, err := verifier.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", d), verify.WithKey())); err == nil {
				return fail(ErrSignatureDigest, fmt.Sprintf("signed by %s for %s", k.Name, signedFor))
			}
		}
	}
	if !keyMatched {
		return fail(ErrUntrustedKey, fmt.Sprintf("signed by a key with hint %s, which is not trusted", hint))
	}
	return fail(ErrBadSignature, "the signature does not verify with the key it names")
}

// Verifier returns a function that verifies the bundle repoURL (oci://host/repo, as an Argo CD
// Application names it) at digest against PEM public keys by name and required attestations
// (names or predicate types, see [AttestationType]), with c: the sync engine's check of an environment's signature policy.
func Verifier(c *Client) func(ctx context.Context, repoURL, digest string, keys map[string]string, require []string) error {
	return func(ctx context.Context, repoURL, digest string, pems map[string]string, require []string) error {
		ref, err := ParseReference(strings.TrimPrefix(repoURL, "oci://") + "@" + digest)
		if err != nil {
			return err
		}
		var keys []TrustedKey
		for _, name := range slices.Sorted(maps.Keys(pems)) {
			k, err := ParseTrustedKey(name, []byte(pems[name]))
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		types, err := AttestationTypes(require)
		if err != nil {
			return err
		}
		_, err = Verify(ctx, c, ref, keys, types...)
		return err
	}
}

// ReferrerInfo is one referrer of a bundle manifest, as listed (not verified).
type ReferrerInfo struct {
	// Kind is "signature", "sbom", "provenance", another predicate type, or the artifact type.
	Kind          string `json:"kind"`
	Digest        string `json:"digest"`
	ArtifactType  string `json:"artifactType"`
	PredicateType string `json:"predicateType,omitempty"`
	Created       string `json:"created,omitempty"`
}

// ListReferrers lists the referrers of the manifest digest in ref's repository, through the
// referrers API or the referrers tag schema: one request, nothing verified.
func ListReferrers(ctx context.Context, c *Client, ref Reference, digest string) ([]ReferrerInfo, error) {
	src, err := c.target(ref, false)
	if err != nil {
		return nil, err
	}
	graph, ok := src.(content.ReadOnlyGraphStorage)
	if !ok {
		return nil, nil
	}
	var list []ocispec.Descriptor
	if err := c.retry(ctx, func() (err error) {
		list, err = registry.Referrers(ctx, graph, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: godigest.Digest(digest)}, "")
		return err
	}); err != nil {
		return nil, c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: list referrers", ref), err)
	}
	out := []ReferrerInfo{}
	for _, d := range list {
		r := ReferrerInfo{Kind: d.ArtifactType, Digest: d.Digest.String(), ArtifactType: d.ArtifactType,
			PredicateType: d.Annotations[annotationBundlePredicate], Created: d.Annotations[ocispec.AnnotationCreated]}
		switch {
		case r.PredicateType != "":
			r.Kind = statementTitle(r.PredicateType)
		case d.ArtifactType == MediaTypeRelocation:
			r.Kind = "relocation"
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ReferrerInfo) int { return strings.Compare(a.Created+a.Digest, b.Created+b.Digest) })
	return out, nil
}
