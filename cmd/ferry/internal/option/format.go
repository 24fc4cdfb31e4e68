package option

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Format is the --format flag group: how results are printed on stdout, and whether progress is
// shown on stderr.
type Format struct {
	Type     string // text, json or go-template
	Template string
	NoTTY    bool
}

// ApplyFlags registers the flags.
func (f *Format) ApplyFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Type, "format", "text", "output format: text, json, or go-template=TEMPLATE")
	fs.BoolVar(&f.NoTTY, "no-tty", false, "never show progress on stderr, even on a terminal")
}

// Parse validates the flags.
func (f *Format) Parse(*cobra.Command) error {
	switch {
	case f.Type == "text", f.Type == "json":
	case strings.HasPrefix(f.Type, "go-template="):
		f.Template = strings.TrimPrefix(f.Type, "go-template=")
		f.Type = "go-template"
		if _, err := template.New("format").Parse(f.Template); err != nil {
			return Usagef("--format go-template=TEMPLATE", "", fmt.Errorf("invalid --format template: %w", err))
		}
	default:
		return Usagef("--format text|json|go-template=TEMPLATE", "supported types: text, json, go-template", fmt.Errorf("invalid format type: %q", f.Type))
	}
	return nil
}

// Progress returns stderr when progress should be shown there (a terminal, text output and no
// --no-tty), otherwise nil.
func (f *Format) Progress(stderr io.Writer) io.Writer {
	if f.NoTTY || f.Type != "text" {
		return nil
	}
	if file, ok := stderr.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		return stderr
	}
	return nil
}

// Render writes v to w as JSON or through the template; for text it calls text.
func (f *Format) Render(w io.Writer, v any, text func(io.Writer) error) error {
	switch f.Type {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "go-template":
		// Templates see the JSON field names, like oras and docker.
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(raw, &generic); err != nil {
			return err
		}
		// A key the result does not have is an error, not "<no value>" (keys are the JSON names:
		// {{.digest}}, not {{.Digest}}). The template runs into a buffer: when it fails, the result
		// is printed as JSON instead, so what a push already did (the digest, the tags it moved)
		// is never lost.
		t := template.Must(template.New("format").Option("missingkey=error").Parse(f.Template))
		var out bytes.Buffer
		if err := t.Execute(&out, generic); err != nil {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(v); jerr != nil {
				return jerr
			}
			return Usagef("--format go-template=TEMPLATE", "use the JSON field names (ferry ... --format json shows them), e.g. {{.digest}}; the result is printed above as JSON",
				fmt.Errorf("--format template failed: %w", err))
		}
		out.WriteByte('\n')
		_, err = w.Write(out.Bytes())
		return err
	default:
		return text(w)
	}
}
