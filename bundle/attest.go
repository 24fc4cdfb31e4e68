package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
	"github.com/ferry-dev/terraform-provider-ferry/internal/version"
)

// Attestations are signed in-toto statements about a bundle, attached at push next to its
// signature and in the same layout (a Sigstore bundle referrer, as `cosign attest` writes them):
// an SBOM in CycloneDX and a SLSA provenance statement. docs/signing.md.
const (
	// PredicateCycloneDX is the predicate type of the SBOM (cosign's `--type cyclonedx`).
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	// PredicateSLSAProvenance is the predicate type of the provenance (cosign's `--type slsaprovenance1`).
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	// BuildTypePush is the SLSA build type of `ferry bundle push`.
	BuildTypePush = "https://ferry.dev/bundle-push/v1"
)

// attestationNames are the short names of predicate types that `--require-attestation` and a
// signature policy accept.
var attestationNames = map[string]string{
	"sbom":            PredicateCycloneDX,
	"cyclonedx":       PredicateCycloneDX,
	"provenance":      PredicateSLSAProvenance,
	"slsaprovenance1": PredicateSLSAProvenance,
}

// AttestationType returns the predicate type an attestation name stands for: "sbom" (or
// "cyclonedx"), "provenance" (or "slsaprovenance1"), or a predicate type URI as it is.
func AttestationType(name string) (string, error) {
	if t, ok := attestationNames[strings.ToLower(strings.TrimSpace(name))]; ok {
		return t, nil
	}
	if u, err := url.Parse(name); err == nil && u.Scheme != "" && u.Host != "" {
		return name, nil
	}
	return "", fmt.Errorf("attestation %q: want sbom, provenance or a predicate type URI such as %s", name, PredicateSLSAProvenance)
}

// AttestationTypes resolves names with [AttestationType], sorted and without duplicates.
func AttestationTypes(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		t, err := AttestationType(n)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// SBOM returns the bundle's software bill of materials: every pinned image by digest as an OCI
// package URL, each Terraform provider of the Terraform layer's dependency lock file with its
// version and lock hashes, every plugin file with its SHA-256, and the layers themselves.
func (p *Packed) SBOM() (*cdx.BOM, error) {
	bom := cdx.NewBOM()
	manifestSum := strings.TrimPrefix(p.Manifest.Digest.String(), "sha256:")
	bom.Metadata = &cdx.Metadata{
		Timestamp: p.Config.Created,
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "ferry", Version: version.Version}}},
		Component: &cdx.Component{
			BOMRef: "bundle", Type: cdx.ComponentTypeApplication, Name: p.Config.Name, Version: p.Config.Version,
			Description: p.Config.Description,
			Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: manifestSum}},
		},
	}
	var comps []cdx.Component
	for _, img := range p.Config.Images {
		comps = append(comps, cdx.Component{
			BOMRef: "image:" + img.Name, Type: cdx.ComponentTypeContainer,
			Name: img.Repository, Version: img.Digest, PackageURL: ociPURL(img),
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(img.Digest, "sha256:")}},
			Properties: &[]cdx.Property{{Name: "ferry:image:name", Value: img.Name}, {Name: "ferry:image:reference", Value: img.Reference}},
		})
	}
	for _, l := range p.Layers {
		comps = append(comps, cdx.Component{
			BOMRef: "layer:" + l.Annotations[AnnotationTitle], Type: cdx.ComponentTypeFile, Name: l.Annotations[AnnotationTitle],
			MIMEType: l.MediaType, Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: l.Digest.Encoded()}},
		})
	}
	for _, src := range p.sources {
		switch src.role {
		case RoleTerraform:
			providers, err := lockedProviders(src.files)
			if err != nil {
				return nil, err
			}
			comps = append(comps, providers...)
		case RolePlugins:
			for _, f := range src.files {
				if !f.Mode.IsRegular() {
					continue
				}
				sum, err := fileSHA256(f.Open)
				if err != nil {
					return nil, fmt.Errorf("sbom: plugins/%s: %w", f.Path, err)
				}
				comps = append(comps, cdx.Component{
					BOMRef: "plugin:" + f.Path, Type: cdx.ComponentTypeFile, Name: "plugins/" + f.Path,
					Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sum}},
				})
			}
		}
	}
	bom.Components = &comps
	return bom, nil
}

// ociPURL is the package URL of a pinned image (purl type "oci": the digest as version, the
// repository as repository_url).
func ociPURL(img ImageLock) string {
	purl := "pkg:oci/" + strings.ToLower(path.Base(img.Repository)) + "@" + strings.Replace(img.Digest, ":", "%3A", 1) +
		"?repository_url=" + img.Repository
	if img.Tag != "" {
		purl += "&tag=" + url.QueryEscape(img.Tag)
	}
	return purl
}

// fileSHA256 is the hex SHA-256 of what open reads.
func fileSHA256(open func() (io.ReadCloser, error)) (string, error) {
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// terraformLockFile is the part of .terraform.lock.hcl the SBOM reads.
type terraformLockFile struct {
	Providers []struct {
		Address     string   `hcl:"address,label"`
		Version     string   `hcl:"version"`
		Constraints string   `hcl:"constraints,optional"`
		Hashes      []string `hcl:"hashes,optional"`
	} `hcl:"provider,block"`
	Remain hcl.Body `hcl:",remain"`
}

const maxLockFileSize = 4 << 20

// lockedProviders reads the providers of the Terraform layer's dependency lock file, if it has one.
func lockedProviders(files []archive.File) ([]cdx.Component, error) {
	i := slices.IndexFunc(files, func(f archive.File) bool { return f.Path == ".terraform.lock.hcl" && f.Mode.IsRegular() })
	if i < 0 {
		return nil, nil
	}
	rc, err := files[i].Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	src, err := io.ReadAll(io.LimitReader(rc, maxLockFileSize))
	if err != nil {
		return nil, err
	}
	f, diags := hclparse.NewParser().ParseHCL(src, "terraform/.terraform.lock.hcl")
	var lock terraformLockFile
	if !diags.HasErrors() {
		diags = gohcl.DecodeBody(f.Body, nil, &lock)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("sbom: terraform/.terraform.lock.hcl: %s (run terraform init to rewrite it)", diags.Error())
	}
	var comps []cdx.Component
	for _, p := range lock.Providers {
		props := []cdx.Property{}
		if p.Constraints != "" {
			props = append(props, cdx.Property{Name: "terraform:constraints", Value: p.Constraints})
		}
		for _, h := range p.Hashes {
			props = append(props, cdx.Property{Name: "terraform:lock:hash", Value: h})
		}
		comps = append(comps, cdx.Component{
			BOMRef: "terraform-provider:" + p.Address, Type: cdx.ComponentTypeLibrary,
			Name: p.Address, Version: p.Version, Properties: &props,
		})
	}
	return comps, nil
}

// Provenance returns the bundle's SLSA provenance (v1): the release source and revision as
// external parameters and dependencies, every pinned image and render tool (by the SHA-256 of
// its executable) as resolved dependencies, the render outputs and layers as byproducts, and the
// builder identified from the CI environment (getenv; see [BuilderFromEnv]).
func (p *Packed) Provenance(getenv func(string) string, started, finished time.Time) (*slsa.Provenance, error) {
	ext, err := structpb.NewStruct(map[string]any{
		"name": p.Config.Name, "version": p.Config.Version,
		"source": p.Config.Source, "revision": p.Config.Revision,
	})
	if err != nil {
		return nil, err
	}
	var deps []*intoto.ResourceDescriptor
	if p.Config.Source != "" || p.Config.Revision != "" {
		d := &intoto.ResourceDescriptor{Name: "source", Uri: p.Config.Source}
		if gitCommitRE.MatchString(p.Config.Revision) {
			d.Digest = map[string]string{"gitCommit": p.Config.Revision}
		} else if p.Config.Revision != "" {
			d.Annotations, _ = structpb.NewStruct(map[string]any{"revision": p.Config.Revision})
		}
		deps = append(deps, d)
	}
	for _, img := range p.Config.Images {
		deps = append(deps, &intoto.ResourceDescriptor{
			Name: "image:" + img.Name, Uri: "oci://" + img.Repository,
			Digest: map[string]string{"sha256": strings.TrimPrefix(img.Digest, "sha256:")},
		})
	}
	for _, st := range p.Spec.Render {
		d := &intoto.ResourceDescriptor{Name: "render:" + st.Name + ":tool"}
		if exe, err := exec.LookPath(st.Command[0]); err == nil {
			d.Uri = "file://" + exe
			if sum, err := fileSHA256(func() (io.ReadCloser, error) { return os.Open(exe) }); err == nil {
				d.Digest = map[string]string{"sha256": sum}
			}
		}
		d.Annotations, _ = structpb.NewStruct(map[string]any{"command": strings.Join(st.Command, " ")})
		deps = append(deps, d)
	}
	var byproducts []*intoto.ResourceDescriptor
	for _, r := range p.Config.Render {
		byproducts = append(byproducts, &intoto.ResourceDescriptor{
			Name: "render:" + r.Name, Uri: "manifests/" + r.Output,
			Digest: map[string]string{"sha256": strings.TrimPrefix(r.Digest, "sha256:")},
		})
	}
	for _, l := range p.Layers {
		byproducts = append(byproducts, &intoto.ResourceDescriptor{
			Name: "layer:" + l.Annotations[AnnotationTitle], MediaType: l.MediaType,
			Digest: map[string]string{"sha256": l.Digest.Encoded()},
		})
	}
	id, invocation := BuilderFromEnv(getenv)
	prov := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{BuildType: BuildTypePush, ExternalParameters: ext, ResolvedDependencies: deps},
		RunDetails: &slsa.RunDetails{
			Builder:    &slsa.Builder{Id: id, Version: map[string]string{"ferry": version.Version}},
			Metadata:   &slsa.BuildMetadata{InvocationId: invocation, StartedOn: timestamppb.New(started), FinishedOn: timestamppb.New(finished)},
			Byproducts: byproducts,
		},
	}
	return prov, prov.Validate()
}

var gitCommitRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// BuilderFromEnv identifies the builder and the run from a CI environment: GitHub Actions (the
// workflow and the run attempt), GitLab CI (the runner and the job), else $FERRY_BUILDER_ID (and
// $FERRY_INVOCATION_ID), else the local host. $FERRY_BUILDER_ID overrides every guess.
func BuilderFromEnv(getenv func(string) string) (id, invocation string) {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		server, repo := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY")
		id = server + "/" + getenv("GITHUB_WORKFLOW_REF")
		invocation = fmt.Sprintf("%s/%s/actions/runs/%s/attempts/%s", server, repo, getenv("GITHUB_RUN_ID"), getenv("GITHUB_RUN_ATTEMPT"))
	case getenv("GITLAB_CI") == "true":
		id = getenv("CI_SERVER_URL") + "/" + getenv("CI_PROJECT_PATH") + "/-/runners/" + getenv("CI_RUNNER_ID")
		invocation = getenv("CI_JOB_URL")
	default:
		host, _ := os.Hostname()
		id = "urn:ferry:builder:local:" + host
	}
	if v := getenv("FERRY_BUILDER_ID"); v != "" {
		id = v
	}
	if v := getenv("FERRY_INVOCATION_ID"); v != "" {
		invocation = v
	}
	return id, invocation
}

// attestations returns the predicates attached at a signed push, by predicate type.
func (p *Packed) attestations(started time.Time) (map[string]*structpb.Struct, error) {
	bom, err := p.SBOM()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).Encode(bom); err != nil {
		return nil, err
	}
	var sbom structpb.Struct
	if err := protojson.Unmarshal(buf.Bytes(), &sbom); err != nil {
		return nil, err
	}
	prov, err := p.Provenance(os.Getenv, started, time.Now())
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	raw, err := protojson.Marshal(prov)
	if err != nil {
		return nil, err
	}
	var provenance structpb.Struct
	if err := protojson.Unmarshal(raw, &provenance); err != nil {
		return nil, err
	}
	return map[string]*structpb.Struct{PredicateCycloneDX: &sbom, PredicateSLSAProvenance: &provenance}, nil
}
