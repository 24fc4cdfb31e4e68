package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SpecFileName is the name of the spec file at the root of a release directory.
const SpecFileName = "ferry.yaml"

// SpecAPIVersion is the only apiVersion of ferry.yaml this version of ferry understands.
const SpecAPIVersion = "ferry.dev/v1"

// SpecKind is the kind of ferry.yaml.
const SpecKind = "Bundle"

// Spec is the parsed ferry.yaml of a release directory. See docs/bundle-format.md.
type Spec struct {
	APIVersion  string
	Kind        string
	Name        string
	Version     string
	Description string
	// Source is the URL of the source repository. Optional.
	Source string
	// Revision is the source revision. Optional; [LoadSpec] defaults it from git.
	Revision string
	// Images maps a logical name to an image reference (by tag, digest or both).
	Images map[string]string
	// Manifests, Terraform and Plugins are directories relative to the release directory, each
	// optional; at least one of them (or a render step) is present.
	Manifests string
	Terraform string
	Plugins   string
	// Render lists the commands run once at package time whose output joins the manifests.
	Render []RenderStep
	// Annotations are extra manifest annotations.
	Annotations map[string]string

	// lines remembers where each field was defined, for errors found after parsing.
	lines map[string]int
	file  string
}

// RenderStep is one command run at package time. Its standard output, which must be Kubernetes YAML,
// is written to Output inside the manifests layer.
type RenderStep struct {
	Name    string
	Command []string
	// Dir is the working directory relative to the release directory. Default ".".
	Dir string
	// Output is the path of the produced file inside the manifests layer.
	Output string
	// Env holds extra environment variables for the command.
	Env map[string]string
}

// SpecError is one problem in ferry.yaml. It wraps [ErrInvalidSpec].
type SpecError struct {
	File  string // file name as given to ParseSpec
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted field path, e.g. "images.api" or "render[1].output"
	Msg   string // what is wrong and what to do
}

func (e *SpecError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// Unwrap returns [ErrInvalidSpec].
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	versionRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$`)
	imageNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
	annKeyRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,253}[A-Za-z0-9])?$`)
	envKeyRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// reservedAnnotations are set by ferry from spec fields; the value names the field to use instead.
var reservedAnnotations = map[string]string{
	AnnotationCreated:     "--created or SOURCE_DATE_EPOCH",
	AnnotationVersion:     "version",
	AnnotationTitle:       "name",
	AnnotationDescription: "description",
	AnnotationSource:      "source",
	AnnotationRevision:    "revision",
}

type specParser struct {
	file string
	errs []error
	spec *Spec
}

func (p *specParser) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &SpecError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// ParseSpec parses and validates the contents of a ferry.yaml. file names the file in errors.
// Unknown fields, wrong types and invalid values are errors that name the line and the field; all
// problems found are returned together, joined. It does not look at the file system; see [LoadSpec].
func ParseSpec(data []byte, file string) (*Spec, error) {
	p := &specParser{file: file, spec: &Spec{lines: map[string]int{}, file: file}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &SpecError{File: file, Msg: "file is empty; start with \"apiVersion: " + SpecAPIVersion + "\""}
		}
		return nil, &SpecError{File: file, Line: yamlErrorLine(err), Msg: "not valid YAML: " + yamlErrorText(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &SpecError{File: file, Line: extra.Line, Msg: "more than one YAML document; keep a single document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &SpecError{File: file, Line: root.Line, Msg: "top level must be a mapping of fields"}
	}
	p.parseTop(root)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.spec, nil
}

// fields iterates a mapping node, reporting duplicate keys.
func (p *specParser) fields(n *yaml.Node, prefix string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := joinField(prefix, k.Value)
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, prefix, "keys must be plain strings")
			continue
		}
		if seen[k.Value] {
			p.errorf(k, field, "defined more than once; keep one")
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
}

func joinField(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func (p *specParser) str(v *yaml.Node, field string) (string, bool) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode {
		p.errorf(v, field, "must be a string, got a %s", kindName(v))
		return "", false
	}
	if v.Tag == "!!null" {
		p.errorf(v, field, "must not be empty")
		return "", false
	}
	if strings.TrimSpace(v.Value) == "" {
		p.errorf(v, field, "must not be empty")
		return "", false
	}
	return v.Value, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "scalar"
	}
}

func (p *specParser) stringMap(v *yaml.Node, field string) (map[string]string, map[string]*yaml.Node) {
	if v.Kind != yaml.MappingNode {
		p.errorf(v, field, "must be a mapping of strings, got a %s", kindName(v))
		return nil, nil
	}
	m := map[string]string{}
	nodes := map[string]*yaml.Node{}
	p.fields(v, field, func(key string, k, val *yaml.Node) {
		if s, ok := p.str(val, joinField(field, key)); ok {
			m[key] = s
			nodes[key] = k
		}
	})
	return m, nodes
}

func (p *specParser) parseTop(root *yaml.Node) {
	s := p.spec
	present := map[string]*yaml.Node{}
	p.fields(root, "", func(key string, k, v *yaml.Node) {
		present[key] = k
		s.lines[key] = k.Line
		switch key {
		case "apiVersion":
			if val, ok := p.str(v, key); ok {
				if val != SpecAPIVersion {
					p.errorf(v, key, "unsupported version %q; this ferry reads %q", val, SpecAPIVersion)
				}
				s.APIVersion = val
			}
		case "kind":
			if val, ok := p.str(v, key); ok {
				if val != SpecKind {
					p.errorf(v, key, "must be %q, got %q", SpecKind, val)
				}
				s.Kind = val
			}
		case "name":
			if val, ok := p.str(v, key); ok {
				if !nameRE.MatchString(val) {
					p.errorf(v, key, "%q is not a valid name; use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit", val)
				}
				s.Name = val
			}
		case "version":
			if val, ok := p.str(v, key); ok {
				if !versionRE.MatchString(val) {
					p.errorf(v, key, "%q is not a valid version; use up to 128 letters, digits and '.', '_', '-', '+', not starting with '.', '-' or '+'", val)
				}
				s.Version = val
			}
		case "description":
			if val, ok := p.str(v, key); ok {
				s.Description = val
			}
		case "source":
			if val, ok := p.str(v, key); ok {
				if u, err := url.Parse(val); err != nil || u.Scheme == "" || u.Host == "" {
					p.errorf(v, key, "%q is not an absolute URL; use e.g. https://git.example.com/team/repo", val)
				}
				s.Source = val
			}
		case "revision":
			if val, ok := p.str(v, key); ok {
				if strings.ContainsAny(val, " \t\r\n") {
					p.errorf(v, key, "%q must not contain whitespace", val)
				}
				s.Revision = val
			}
		case "images":
			p.parseImages(v)
		case "manifests", "terraform", "plugins":
			if val, ok := p.str(v, key); ok {
				if msg := checkRelPath(val); msg != "" {
					p.errorf(v, key, "%s", msg)
				}
				switch key {
				case "manifests":
					s.Manifests = val
				case "terraform":
					s.Terraform = val
				case "plugins":
					s.Plugins = val
				}
			}
		case "render":
			p.parseRender(v)
		case "annotations":
			m, nodes := p.stringMap(v, key)
			for _, ak := range sortedKeys(m) {
				if use, ok := reservedAnnotations[ak]; ok {
					p.errorf(nodes[ak], "annotations."+ak, "is set by ferry; use %s instead", use)
				} else if !annKeyRE.MatchString(ak) {
					p.errorf(nodes[ak], "annotations."+ak, "is not a valid annotation key; use letters, digits, '.', '_', '/', '-'")
				}
			}
			s.Annotations = m
		default:
			p.errorf(k, key, "unknown field; known fields are %s", strings.Join(specFields, ", "))
		}
	})
	for _, req := range []string{"apiVersion", "kind", "name", "version"} {
		if present[req] == nil {
			p.errorf(root, req, "is required")
		}
	}
	if present["manifests"] == nil && present["terraform"] == nil && present["plugins"] == nil && present["render"] == nil {
		p.errorf(root, "manifests", "at least one of manifests, terraform, plugins or render is required")
	}
}

var specFields = []string{"apiVersion", "kind", "name", "version", "description", "source", "revision", "images", "manifests", "terraform", "plugins", "render", "annotations"}

func (p *specParser) parseImages(v *yaml.Node) {
	m, nodes := p.stringMap(v, "images")
	for _, name := range sortedKeys(m) {
		field := "images." + name
		if !imageNameRE.MatchString(name) {
			p.errorf(nodes[name], field, "%q is not a valid image name; use lowercase letters, digits, '.', '_' and '-'", name)
			continue
		}
		if _, err := ParseImageReference(m[name]); err != nil {
			p.errorf(nodes[name], field, "%v", err)
		}
	}
	p.spec.Images = m
}

var renderFields = []string{"name", "command", "dir", "output", "env"}

func (p *specParser) parseRender(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.errorf(v, "render", "must be a list of steps, got a %s", kindName(v))
		return
	}
	names := map[string]bool{}
	outputs := map[string]bool{}
	for i, item := range v.Content {
		prefix := fmt.Sprintf("render[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.errorf(item, prefix, "must be a mapping with name, command and output, got a %s", kindName(item))
			continue
		}
		var st RenderStep
		has := map[string]bool{}
		p.fields(item, prefix, func(key string, k, val *yaml.Node) {
			has[key] = true
			field := prefix + "." + key
			switch key {
			case "name":
				if s, ok := p.str(val, field); ok {
					if !nameRE.MatchString(s) {
						p.errorf(val, field, "%q is not a valid step name; use lowercase letters, digits and '-'", s)
					} else if names[s] {
						p.errorf(val, field, "step %q is defined more than once; give each step its own name", s)
					}
					names[s] = true
					st.Name = s
				}
			case "command":
				if val.Kind != yaml.SequenceNode {
					p.errorf(val, field, "must be a list of arguments, e.g. [\"sh\", \"render.sh\"]")
					return
				}
				if len(val.Content) == 0 {
					p.errorf(val, field, "must not be empty")
					return
				}
				for j, a := range val.Content {
					if s, ok := p.str(a, fmt.Sprintf("%s[%d]", field, j)); ok {
						st.Command = append(st.Command, s)
					}
				}
			case "dir":
				if s, ok := p.str(val, field); ok {
					if msg := checkRelPath(s); msg != "" {
						p.errorf(val, field, "%s", msg)
					}
					st.Dir = s
				}
			case "output":
				if s, ok := p.str(val, field); ok {
					if msg := checkRelPath(s); msg != "" {
						p.errorf(val, field, "%s", msg)
					} else if ext := path.Ext(s); ext != ".yaml" && ext != ".yml" && ext != ".json" {
						p.errorf(val, field, "%q must end in .yaml, .yml or .json so Argo CD reads it", s)
					} else if outputs[path.Clean(s)] {
						p.errorf(val, field, "%q is written by another step; give each step its own output", s)
					}
					outputs[path.Clean(s)] = true
					st.Output = path.Clean(s)
				}
			case "env":
				m, nodes := p.stringMap(val, field)
				for _, ek := range sortedKeys(m) {
					if !envKeyRE.MatchString(ek) {
						p.errorf(nodes[ek], field+"."+ek, "is not a valid environment variable name")
					}
				}
				st.Env = m
			default:
				p.errorf(k, field, "unknown field; known fields are %s", strings.Join(renderFields, ", "))
			}
		})
		for _, req := range []string{"name", "command", "output"} {
			if !has[req] {
				p.errorf(item, prefix+"."+req, "is required")
			}
		}
		if st.Dir == "" {
			st.Dir = "."
		}
		p.spec.Render = append(p.spec.Render, st)
	}
}

// checkRelPath returns a message when p is not a clean relative path inside the release directory.
func checkRelPath(p string) string {
	if strings.Contains(p, `\`) {
		return fmt.Sprintf("%q must use '/' as separator", p)
	}
	if path.IsAbs(p) || filepath.IsAbs(p) {
		return fmt.Sprintf("%q must be relative to the release directory", p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Sprintf("%q leaves the release directory; keep it inside", p)
	}
	return ""
}

func yamlErrorLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	var line int
	if _, scanErr := fmt.Sscanf(yamlErrorText(err), "line %d:", &line); scanErr == nil {
		return line
	}
	return 0
}

func yamlErrorText(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// LoadSpec reads dir/ferry.yaml, validates it, checks that the directories it names exist inside dir,
// and defaults Revision from git when dir is in a git work tree.
func LoadSpec(dir string) (*Spec, error) {
	file := filepath.Join(dir, SpecFileName)
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &SpecError{File: file, Msg: "not found; a release directory needs a " + SpecFileName + " at its root (see docs/bundle-format.md)"}
		}
		return nil, fmt.Errorf("read spec: %w", err)
	}
	s, err := ParseSpec(data, file)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, d := range []struct{ field, rel string }{{"manifests", s.Manifests}, {"terraform", s.Terraform}, {"plugins", s.Plugins}} {
		if d.rel == "" {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(d.rel)))
		switch {
		case err != nil:
			errs = append(errs, &SpecError{File: file, Line: s.lines[d.field], Field: d.field, Msg: fmt.Sprintf("directory %q does not exist; create it or remove the field", d.rel)})
		case !fi.IsDir():
			errs = append(errs, &SpecError{File: file, Line: s.lines[d.field], Field: d.field, Msg: fmt.Sprintf("%q is not a directory", d.rel)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if s.Revision == "" {
		s.Revision = gitRevision(dir)
	}
	return s, nil
}
