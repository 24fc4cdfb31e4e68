package bundle

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// Signatures are Sigstore bundles (protobuf bundle v0.3, JSON) stored as OCI 1.1 referrers of the
// bundle manifest, in the layout the cosign CLI writes and reads by default (cosign v3): a
// manifest whose artifactType is MediaTypeSigstoreBundle, an empty config, one layer with the
// Sigstore bundle, and the signed manifest as subject. The Sigstore bundle holds a DSSE envelope
// around an in-toto statement whose subject is the manifest digest and whose predicate type is
// PredicateCosignSign — what `cosign sign` signs — and the signer's public key hint; no
// certificate, transparency log entry or timestamp, so verification with a trusted public key
// needs no network (`cosign verify --key K --insecure-ignore-tlog=true`). Registries without the
// referrers API get the referrers tag schema (`sha256-<hex>`), which oras-go maintains.
// docs/signing.md.
const (
	MediaTypeSigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// PredicateCosignSign is the predicate type of a signature (as opposed to an attestation).
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

	payloadTypeInToto          = "application/vnd.in-toto+json"
	annotationBundleContent    = "dev.sigstore.bundle.content"
	annotationBundlePredicate  = "dev.sigstore.bundle.predicateType"
	privateKeyPEMType          = "ENCRYPTED SIGSTORE PRIVATE KEY"
	legacyPrivateKeyPEMType    = "ENCRYPTED COSIGN PRIVATE KEY"
	maxSignatureManifestBytes  = 64 << 10
	maxSigstoreBundleLayerSize = 4 << 20
)

// SigningKey is a private key that signs bundles, loaded from cosign's encrypted key format.
type SigningKey struct {
	signer crypto.Signer
	alg    signature.AlgorithmDetails
	hint   []byte
}

// LoadSigningKey decrypts a private key in cosign's format (PEM "ENCRYPTED SIGSTORE PRIVATE KEY"
// or the older "ENCRYPTED COSIGN PRIVATE KEY": a PKCS #8 key encrypted with scrypt and
// NaCl secretbox) with password. ECDSA P-256, P-384, P-521 and Ed25519 keys are accepted.
func LoadSigningKey(pemBytes, password []byte) (*SigningKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || (block.Type != privateKeyPEMType && block.Type != legacyPrivateKeyPEMType) {
		return nil, fmt.Errorf("%w: not an encrypted cosign private key (want a PEM block %q, as `cosign generate-key-pair` writes)", ErrSigningKey, privateKeyPEMType)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt: wrong password? (%v)", ErrSigningKey, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSigningKey, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not a signing key", ErrSigningKey, key)
	}
	details, err := signature.GetDefaultPublicKeyDetails(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v (use ECDSA P-256 or Ed25519)", ErrSigningKey, err)
	}
	alg, err := signature.GetAlgorithmDetails(details)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSigningKey, err)
	}
	hint, err := keyHint(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSigningKey, err)
	}
	return &SigningKey{signer: signer, alg: alg, hint: []byte(hint)}, nil
}

// GenerateKeyPair returns a new ECDSA P-256 key pair in cosign's formats: the private key
// encrypted with password, and the public key.
func GenerateKeyPair(password []byte) (privatePEM, publicPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, err
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateKeyPEMType, Bytes: enc}), pub, nil
}

// keyHint is the key's hint in a Sigstore bundle: base64 of the SHA-256 of its PKIX form.
func keyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// The methods of sign.Keypair.

func (k *SigningKey) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *SigningKey) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *SigningKey) GetHint() []byte                { return k.hint }
func (k *SigningKey) GetPublicKey() crypto.PublicKey { return k.signer.Public() }
func (k *SigningKey) GetKeyAlgorithm() string {
	switch k.signer.Public().(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "ED25519"
	}
	return ""
}
func (k *SigningKey) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.signer.Public())
	return string(b), err
}

// SignData signs data: its digest with ECDSA, the data itself with Ed25519 (which hashes it).
func (k *SigningKey) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := k.alg.GetHashType()
	toSign := data
	if h != crypto.Hash(0) {
		hasher := h.New()
		hasher.Write(data)
		toSign = hasher.Sum(nil)
	}
	sig, err := k.signer.Sign(rand.Reader, toSign, h)
	return sig, toSign, err
}

// PublicKeyPEM returns the key's public half, PEM encoded (cosign.pub).
func (k *SigningKey) PublicKeyPEM() ([]byte, error) {
	return cryptoutils.MarshalPublicKeyToPEM(k.signer.Public())
}

// sigstoreSignature returns the Sigstore bundle (JSON) of an in-toto statement about digest,
// signed by key: a signature (PredicateCosignSign, empty predicate) or an attestation.
func sigstoreSignature(ctx context.Context, key *SigningKey, digest string, predicateType string, predicate *structpb.Struct) ([]byte, error) {
	algo, hexSum, ok := splitDigest(digest)
	if !ok {
		return nil, fmt.Errorf("sign %s: not a digest", digest)
	}
	stmt := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Digest: map[string]string{algo: hexSum}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	}
	if stmt.Predicate == nil {
		stmt.Predicate = &structpb.Struct{}
	}
	payload, err := protojson.Marshal(stmt)
	if err != nil {
		return nil, err
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: payloadTypeInToto}, key, sign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", digest, err)
	}
	return protojson.Marshal(pb)
}

func splitDigest(d string) (algo, hexSum string, ok bool) {
	for i := 0; i < len(d); i++ {
		if d[i] == ':' {
			algo, hexSum = d[:i], d[i+1:]
			_, err := hex.DecodeString(hexSum)
			return algo, hexSum, algo == "sha256" && len(hexSum) == 64 && err == nil
		}
	}
	return "", "", false
}

// attachSignature pushes a signature of subject by key to dst as a referrer of subject and
// returns the referrer's manifest descriptor. created is its creation time annotation.
func attachSignature(ctx context.Context, dst oras.Target, subject ocispec.Descriptor, key *SigningKey, created time.Time) (ocispec.Descriptor, error) {
	return attachStatement(ctx, dst, subject, key, created, PredicateCosignSign, nil)
}

// attachStatement pushes a signed in-toto statement about subject (a signature, or an attestation
// with its predicate) to dst as a referrer of subject, as `cosign sign` and `cosign attest` do.
func attachStatement(ctx context.Context, dst oras.Target, subject ocispec.Descriptor, key *SigningKey, created time.Time, predicateType string, predicate *structpb.Struct) (ocispec.Descriptor, error) {
	data, err := sigstoreSignature(ctx, key, subject.Digest.String(), predicateType, predicate)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if len(data) > maxSigstoreBundleLayerSize {
		return ocispec.Descriptor{}, fmt.Errorf("%s statement of %d bytes: larger than the %d that verification reads", predicateType, len(data), maxSigstoreBundleLayerSize)
	}
	layer := content.NewDescriptorFromBytes(MediaTypeSigstoreBundle, data)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: "sha256-" + subject.Digest.Encoded() + ".sigstore.json"}
	if err := pushIfMissing(ctx, dst, layer, data); err != nil {
		return ocispec.Descriptor{}, err
	}
	return oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, MediaTypeSigstoreBundle, oras.PackManifestOptions{
		Subject: &subject,
		Layers:  []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339),
			annotationBundleContent:   "dsse-envelope",
			annotationBundlePredicate: predicateType,
		},
	})
}

func pushIfMissing(ctx context.Context, dst oras.Target, desc ocispec.Descriptor, data []byte) error {
	exists, err := dst.Exists(ctx, desc)
	if err != nil || exists {
		return err
	}
	if err := dst.Push(ctx, desc, bytes.NewReader(data)); err != nil && !isAlreadyExists(err) {
		return err
	}
	return nil
}

// ErrSigningKey is a signing key that cannot be used (format, password, algorithm).
var ErrSigningKey = errors.New("invalid signing key")

// SignResult describes a signature attached by [Sign].
type SignResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Signature is the digest of the signature's referrer manifest.
	Signature string `json:"signature"`
}

// Sign signs the bundle ref names (a tag is resolved to the digest it points at now) with key
// and attaches the signature as a referrer of its manifest. Signing a bundle twice attaches two
// signatures; either verifies.
func Sign(ctx context.Context, c *Client, ref Reference, key *SigningKey) (*SignResult, error) {
	dst, err := c.target(ref, false)
	if err != nil {
		return nil, err
	}
	wrap := func(what string, err error) error {
		return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: %s", ref, what), err)
	}
	var subject ocispec.Descriptor
	if err := c.retry(ctx, func() (err error) {
		subject, err = dst.Resolve(ctx, ref.Ref())
		return err
	}); err != nil {
		return nil, wrap("resolve", err)
	}
	if subject.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%s: %w: it is a %s, not an OCI image manifest", ref, ErrNotBundle, subject.MediaType)
	}
	var sig ocispec.Descriptor
	if err := c.retry(ctx, func() (err error) {
		sig, err = attachSignature(ctx, dst, subject, key, time.Now())
		return err
	}); err != nil {
		return nil, wrap("attach signature", err)
	}
	return &SignResult{Reference: ref.Name(), Digest: subject.Digest.String(), Signature: sig.Digest.String()}, nil
}
