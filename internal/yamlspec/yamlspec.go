// Package yamlspec reads the YAML files people write for ferry (ferry.yaml, fleet.yaml) so that
// every problem names its file, line and field, and all problems are reported together.
package yamlspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NewError makes the caller's error type for one problem: the file, the 1-based line (0 when
// unknown), the dotted field path ("" for the whole file) and what is wrong and what to do.
type NewError func(file string, line int, field, msg string) error

// Parser collects the problems of one file.
type Parser struct {
	File     string
	NewError NewError
	Errs     []error
}

// Errorf records a problem at n (nil: no line) in field.
func (p *Parser) Errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.Errs = append(p.Errs, p.NewError(p.File, line, field, fmt.Sprintf(format, args...)))
}

// Err returns the recorded problems joined, or nil.
func (p *Parser) Err() error { return errors.Join(p.Errs...) }

// Root decodes data as exactly one YAML document whose top level is a mapping and returns that
// mapping; anything else is one error saying what to write instead. apiVersion is what an empty
// file is told to start with.
func (p *Parser) Root(data []byte, apiVersion string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.NewError(p.File, 0, "", "file is empty; start with \"apiVersion: "+apiVersion+"\"")
		}
		return nil, p.NewError(p.File, errorLine(err), "", "not valid YAML: "+ErrorText(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.NewError(p.File, extra.Line, "", "more than one YAML document; keep a single document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.NewError(p.File, root.Line, "", "top level must be a mapping of fields")
	}
	return root, nil
}

// Fields calls fn for each key of the mapping n with the key's node and its value (an alias
// resolved), reporting keys that are not plain strings or that repeat.
func (p *Parser) Fields(n *yaml.Node, prefix string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		field := JoinField(prefix, k.Value)
		if k.Kind != yaml.ScalarNode {
			p.Errorf(k, prefix, "keys must be plain strings")
			continue
		}
		if seen[k.Value] {
			p.Errorf(k, field, "defined more than once; keep one")
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
}

// Str returns the non-empty string at v, or records why it is not one.
func (p *Parser) Str(v *yaml.Node, field string) (string, bool) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode {
		p.Errorf(v, field, "must be a string, got a %s", KindName(v))
		return "", false
	}
	if v.Tag == "!!null" || strings.TrimSpace(v.Value) == "" {
		p.Errorf(v, field, "must not be empty")
		return "", false
	}
	return v.Value, true
}

// JoinField appends key to the dotted field path prefix.
func JoinField(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// KindName names a node's kind as errors say it: mapping, list or scalar.
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "scalar"
	}
}

// errorLine is the line a YAML syntax error names, 0 when none.
func errorLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	var line int
	if _, scanErr := fmt.Sscanf(ErrorText(err), "line %d:", &line); scanErr == nil {
		return line
	}
	return 0
}

// ErrorText is a YAML error's message without the library's "yaml: " prefix.
func ErrorText(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// Message writes one problem as errors show it: "FILE:LINE: FIELD: MSG", without the line when
// it is 0 and without the field when it is "".
func Message(file string, line int, field, msg string) string {
	loc := file
	if line > 0 {
		loc = fmt.Sprintf("%s:%d", file, line)
	}
	if field == "" {
		return loc + ": " + msg
	}
	return fmt.Sprintf("%s: %s: %s", loc, field, msg)
}
