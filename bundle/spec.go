package bundle

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/yamlspec"
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

func (e *SpecError) Error() string { return yamlspec.Message(e.File, e.Line, e.Field, e.Msg) }

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
	yamlspec.Parser
	spec *Spec
}

func newSpecError(file string, line int, field, msg string) error {
	return &SpecError{File: file, Line: line, Field: field, Msg: msg}
}

// ParseSpec parses and validates the contents of a ferry.yaml. file names the file in errors.
// Unknown fields, wrong types and invalid values are errors that name the line and the field; all
// problems found are returned together, joined. It does not look at the file system; see [LoadSpec].
func ParseSpec(data []byte, file string) (*Spec, error) {
	p := &specParser{Parser: yamlspec.Parser{File: file, NewError: newSpecError}, spec: &Spec{lines: map[string]int{}, file: file}}
	root, err := p.Root(data, SpecAPIVersion)
	if err != nil {
		return nil, err
	}
	p.parseTop(root)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return p.spec, nil
}

func (p *specParser) stringMap(v *yaml.Node, field string) (map[string]string, map[string]*yaml.Node) {
	if v.Kind != yaml.MappingNode {
		p.Errorf(v, field, "must be a mapping of strings, got a %s", yamlspec.KindName(v))
		return nil, nil
	}
	m := map[string]string{}
	nodes := map[string]*yaml.Node{}
	p.Fields(v, field, func(key string, k, val *yaml.Node) {
		if s, ok := p.Str(val, yamlspec.JoinField(field, key)); ok {
			m[key] = s
			nodes[key] = k
		}
	})
	return m, nodes
}

func (p *specParser) parseTop(root *yaml.Node) {
	s := p.spec
	present := map[string]*yaml.Node{}
	p.Fields(root, "", func(key string, k, v *yaml.Node) {
		present[key] = k
		s.lines[key] = k.Line
		switch key {
		case "apiVersion":
			if val, ok := p.Str(v, key); ok {
				if val != SpecAPIVersion {
					p.Errorf(v, key, "unsupported version %q; this ferry reads %q", val, SpecAPIVersion)
				}
				s.APIVersion = val
			}
		case "kind":
			if val, ok := p.Str(v, key); ok {
				if val != SpecKind {
					p.Errorf(v, key, "must be %q, got %q", SpecKind, val)
				}
				s.Kind = val
			}
		case "name":
			if val, ok := p.Str(v, key); ok {
				if !nameRE.MatchString(val) {
					p.Errorf(v, key, "%q is not a valid name; use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit", val)
				}
				s.Name = val
			}
		case "version":
			if val, ok := p.Str(v, key); ok {
				if !versionRE.MatchString(val) {
					p.Errorf(v, key, "%q is not a valid version; use up to 128 letters, digits and '.', '_', '-', '+', not starting with '.', '-' or '+'", val)
				}
				s.Version = val
			}
		case "description":
			if val, ok := p.Str(v, key); ok {
				s.Description = val
			}
		case "source":
			if val, ok := p.Str(v, key); ok {
				if u, err := url.Parse(val); err != nil || u.Scheme == "" || u.Host == "" {
					p.Errorf(v, key, "%q is not an absolute URL; use e.g. https://git.example.com/team/repo", val)
				}
				s.Source = val
			}
		case "revision":
			if val, ok := p.Str(v, key); ok {
				if strings.ContainsAny(val, " \t\r\n") {
					p.Errorf(v, key, "%q must not contain whitespace", val)
				}
				s.Revision = val
			}
		case "images":
			p.parseImages(v)
		case "manifests", "terraform", "plugins":
			if val, ok := p.Str(v, key); ok {
				if msg := checkRelPath(val); msg != "" {
					p.Errorf(v, key, "%s", msg)
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
					p.Errorf(nodes[ak], "annotations."+ak, "is set by ferry; use %s instead", use)
				} else if !annKeyRE.MatchString(ak) {
					p.Errorf(nodes[ak], "annotations."+ak, "is not a valid annotation key; use letters, digits, '.', '_', '/', '-'")
				}
			}
			s.Annotations = m
		default:
			p.Errorf(k, key, "unknown field; known fields are %s", strings.Join(specFields, ", "))
		}
	})
	for _, req := range []string{"apiVersion", "kind", "name", "version"} {
		if present[req] == nil {
			p.Errorf(root, req, "is required")
		}
	}
	if present["manifests"] == nil && present["terraform"] == nil && present["plugins"] == nil && present["render"] == nil {
		p.Errorf(root, "manifests", "at least one of manifests, terraform, plugins or render is required")
	}
}

var specFields = []string{"apiVersion", "kind", "name", "version", "description", "source", "revision", "images", "manifests", "terraform", "plugins", "render", "annotations"}

func (p *specParser) parseImages(v *yaml.Node) {
	m, nodes := p.stringMap(v, "images")
	for _, name := range sortedKeys(m) {
		field := "images." + name
		if !imageNameRE.MatchString(name) {
			p.Errorf(nodes[name], field, "%q is not a valid image name; use lowercase letters, digits, '.', '_' and '-'", name)
			continue
		}
		if _, err := ParseImageReference(m[name]); err != nil {
			p.Errorf(nodes[name], field, "%v", err)
		}
	}
	p.spec.Images = m
}

var renderFields = []string{"name", "command", "dir", "output", "env"}

func (p *specParser) parseRender(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.Errorf(v, "render", "must be a list of steps, got a %s", yamlspec.KindName(v))
		return
	}
	names := map[string]bool{}
	outputs := map[string]bool{}
	for i, item := range v.Content {
		prefix := fmt.Sprintf("render[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.Errorf(item, prefix, "must be a mapping with name, command and output, got a %s", yamlspec.KindName(item))
			continue
		}
		var st RenderStep
		has := map[string]bool{}
		p.Fields(item, prefix, func(key string, k, val *yaml.Node) {
			has[key] = true
			field := prefix + "." + key
			switch key {
			case "name":
				if s, ok := p.Str(val, field); ok {
					if !nameRE.MatchString(s) {
						p.Errorf(val, field, "%q is not a valid step name; use lowercase letters, digits and '-'", s)
					} else if names[s] {
						p.Errorf(val, field, "step %q is defined more than once; give each step its own name", s)
					}
					names[s] = true
					st.Name = s
				}
			case "command":
				if val.Kind != yaml.SequenceNode {
					p.Errorf(val, field, "must be a list of arguments, e.g. [\"sh\", \"render.sh\"]")
					return
				}
				if len(val.Content) == 0 {
					p.Errorf(val, field, "must not be empty")
					return
				}
				for j, a := range val.Content {
					if s, ok := p.Str(a, fmt.Sprintf("%s[%d]", field, j)); ok {
						st.Command = append(st.Command, s)
					}
				}
			case "dir":
				if s, ok := p.Str(val, field); ok {
					if msg := checkRelPath(s); msg != "" {
						p.Errorf(val, field, "%s", msg)
					}
					st.Dir = s
				}
			case "output":
				if s, ok := p.Str(val, field); ok {
					if msg := checkRelPath(s); msg != "" {
						p.Errorf(val, field, "%s", msg)
					} else if ext := path.Ext(s); ext != ".yaml" && ext != ".yml" && ext != ".json" {
						p.Errorf(val, field, "%q must end in .yaml, .yml or .json so Argo CD reads it", s)
					} else if outputs[path.Clean(s)] {
						p.Errorf(val, field, "%q is written by another step; give each step its own output", s)
					}
					outputs[path.Clean(s)] = true
					st.Output = path.Clean(s)
				}
			case "env":
				m, nodes := p.stringMap(val, field)
				for _, ek := range sortedKeys(m) {
					if !envKeyRE.MatchString(ek) {
						p.Errorf(nodes[ek], field+"."+ek, "is not a valid environment variable name")
					}
				}
				st.Env = m
			default:
				p.Errorf(k, field, "unknown field; known fields are %s", strings.Join(renderFields, ", "))
			}
		})
		for _, req := range []string{"name", "command", "output"} {
			if !has[req] {
				p.Errorf(item, prefix+"."+req, "is required")
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
