package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/yamlspec"
)

// Rewrite records one image reference in a manifest pinned to its locked digest.
type Rewrite struct {
	// File is the path inside the manifests layer.
	File string `json:"file"`
	// Line is the 1-based line of the image field.
	Line int `json:"line"`
	// Image is the logical image name from ferry.yaml.
	Image string `json:"image"`
	// From is the reference as written in the manifest; To is the pinned repo@digest.
	From string `json:"from"`
	To   string `json:"to"`
	// Note explains a rewrite that changed more than the tag, e.g. a tag other than ferry.yaml's.
	Note string `json:"note,omitempty"`
}

type replacement struct {
	offset, length int
	text           string
}

// RewriteImages pins every image field of the Kubernetes objects in data (one YAML or JSON file,
// possibly with several documents) whose repository is locked, and returns the new content and what
// changed. Formatting, comments and everything else are kept byte for byte. file names the file in
// errors and records.
func RewriteImages(data []byte, file string, locks []ImageLock) ([]byte, []Rewrite, error) {
	byRepo := map[string]ImageLock{}
	for _, l := range locks {
		byRepo[l.Repository] = l
	}
	lineStarts := []int{0}
	for i, b := range data {
		if b == '\n' {
			lineStarts = append(lineStarts, i+1)
		}
	}
	var reps []replacement
	var rewrites []Rewrite
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w: %s", file, ErrManifest, yamlspec.ErrorText(err))
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if !isKubernetesObject(root) {
			continue
		}
		var walkErr error
		walkImages(root, func(v *yaml.Node) {
			if walkErr != nil {
				return
			}
			ref, err := parseImageRef(v.Value)
			if err != nil {
				return
			}
			lock, ok := byRepo[ref.Repository()]
			if !ok || lock.Digest == "" {
				return
			}
			pinned := lock.Pinned()
			if v.Value == pinned {
				return
			}
			rep, err := scalarReplacement(data, lineStarts, v, pinned)
			if err != nil {
				walkErr = fmt.Errorf("%s:%d: %w: %v", file, v.Line, ErrManifest, err)
				return
			}
			rw := Rewrite{File: file, Line: v.Line, Image: lock.Name, From: v.Value, To: pinned}
			switch {
			case ref.Digest != "" && ref.Digest != lock.Digest:
				rw.Note = fmt.Sprintf("digest %s replaced by the locked %s", ref.Digest, lock.Digest)
			case ref.Tag != "" && lock.Tag != "" && ref.Tag != lock.Tag:
				rw.Note = fmt.Sprintf("tag %q differs from ferry.yaml's %q", ref.Tag, lock.Tag)
			}
			reps = append(reps, rep)
			rewrites = append(rewrites, rw)
		})
		if walkErr != nil {
			return nil, nil, walkErr
		}
	}
	if len(reps) == 0 {
		return data, nil, nil
	}
	sort.Slice(reps, func(i, j int) bool { return reps[i].offset < reps[j].offset })
	var out bytes.Buffer
	last := 0
	for _, r := range reps {
		out.Write(data[last:r.offset])
		out.WriteString(r.text)
		last = r.offset + r.length
	}
	out.Write(data[last:])
	return out.Bytes(), rewrites, nil
}

func isKubernetesObject(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	var api, kind bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "apiVersion":
			api = true
		case "kind":
			kind = true
		}
	}
	return api && kind
}

// walkImages calls fn for every scalar value of a mapping key "image".
func walkImages(n *yaml.Node, fn func(v *yaml.Node)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "image" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
				fn(v)
				continue
			}
			walkImages(v, fn)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			walkImages(c, fn)
		}
	}
}

// scalarReplacement locates the source text of scalar v and returns the edit that replaces its value
// with text, keeping its quoting style.
func scalarReplacement(data []byte, lineStarts []int, v *yaml.Node, text string) (replacement, error) {
	if v.Line < 1 || v.Line > len(lineStarts) {
		return replacement{}, fmt.Errorf("image %q: position out of range", v.Value)
	}
	off := lineStarts[v.Line-1] + v.Column - 1
	var raw, repl string
	switch v.Style {
	case 0:
		raw, repl = v.Value, text
	case yaml.DoubleQuotedStyle:
		raw, repl = `"`+v.Value+`"`, `"`+text+`"`
	case yaml.SingleQuotedStyle:
		raw, repl = `'`+v.Value+`'`, `'`+text+`'`
	default:
		return replacement{}, fmt.Errorf("image %q: write it as a plain or quoted scalar so ferry can pin it", v.Value)
	}
	if off < 0 || off+len(raw) > len(data) || string(data[off:off+len(raw)]) != raw {
		return replacement{}, fmt.Errorf("image %q: write it on one line without escapes so ferry can pin it", v.Value)
	}
	return replacement{offset: off, length: len(raw), text: repl}, nil
}
