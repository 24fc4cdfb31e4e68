package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// mistakes are the mistakes a new user made against a registry and a cluster (the list that
// defined the CLI's contract with scripts), each with the tests that run it and assert its exit
// code and message. A mistake is run where its setting is: a registry, an API server that never
// answers, a terminal; this table keeps the list whole.
var mistakes = []struct {
	mistake string
	tests   []string
}{
	{"app wait against an unreachable cluster: transient (3) within --request-timeout × --retries, saying why", []string{"TestCLIUnreachable", "TestCLIAppWaitClusterLost"}},
	{"app wait --revision abc: refused, the docs require sha256:…", []string{"TestCLIUsageErrors"}},
	{"app wait shows progress on a terminal", []string{"TestCLIAppWaitClusterLost"}},
	{"bundle puhs, app stauts, window chek: exit 2 with a suggestion, not help and 0", []string{"TestCLIUsageErrors"}},
	{"--format go-template with a key of the wrong case: an error, not <no value>", []string{"TestCLITemplateErrors"}},
	{"a template that fails after a push: the digest is still printed", []string{"TestCLITemplateErrors"}},
	{"logout of a host never logged in: says so instead of Removed", []string{"TestCLILoginHints"}},
	{"unknown flags and wrong argument counts: exit 2 with the usage", []string{"TestCLIUsageErrors"}},
	{"unreachable cluster: exit 3 for app and window check", []string{"TestCLIUnreachable"}},
	{"a failed login: classified (exit 2 for refused credentials, 3 unreachable)", []string{"TestCLILoginHints", "TestCLIHints"}},
	{"HTTPS against a plain-HTTP registry, and the reverse: exit 2 at once, with the fix", []string{"TestCLIHints"}},
	{"Ctrl-C: exit 130, not registry unreachable", []string{"TestCLIInterrupt"}},
	{"an image registry that does not resolve: DNS and --offline, no TLS hint (also with --plain-http)", []string{"TestCLIHints"}},
	{"window check against an unreachable cluster: a hint about the cluster, not the environment name", []string{"TestCLIUnreachable"}},
	{"oci://HOST/… and https://HOST/… references: read with a note, or refused with the form to write", []string{"TestCLIOCIReferenceForms", "TestCLIUsageErrors"}},
	{"an uppercase repository: says lowercase", []string{"TestCLIUsageErrors"}},
	{"a reference that is only HOST:PORT: says to add the repository", []string{"TestCLIUsageErrors"}},
	{"swapped arguments: names which is which", []string{"TestCLIUsageErrors"}},
	{"--only manifest: did you mean manifests", []string{"TestCLIUsageErrors"}},
	{"kube errors: the CLI's flags, not the provider's attributes", []string{"TestCLIUnreachable", "TestKubeNames"}},
	{"negative or zero values (--max-entries -5, --retries -1, --timeout -5m, --stuck-after 0s): refused naming the flag", []string{"TestCLIUsageErrors", "TestCLIUnreachable"}},
	{"sizes and durations without units: say which unit to write", []string{"TestCLIUsageErrors", "TestParseSize"}},
	{"pull into a directory with a ferry.lock.json: left as it was", []string{"TestCLIHintsOutputs", "TestCLIPullKeepsWhatItDidNotCreate"}},
	{"push to oci-layout: of a non-empty ordinary directory: refused", []string{"TestCLIHintsOutputs"}},
	{"DIR given as …/ferry.yaml: names the directory to give", []string{"TestCLIUsageErrors"}},
	{"a registry that stalls: transient within --idle-timeout × --retries", []string{"TestCLIPullStalledRegistry"}},
	{"push and pull of 100 MiB on a terminal: bytes, rate and time left; nothing off a terminal", []string{"TestCLIProgress"}},
	{"docs/cli.md's exit codes and the code's table: the same", []string{"TestDocExitCodes", "TestExitCodesInTable"}},
	{"every --help example: runs", []string{"TestCLIHelpExamples"}},
}

// TestCLIMistakeTable: every mistake of the table names tests, and each of those tests exists in
// cmd/ferry, so renaming or deleting one cannot drop a mistake unnoticed.
func TestCLIMistakeTable(t *testing.T) {
	t.Parallel()
	defined := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				defined[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mistakes {
		if len(m.tests) == 0 {
			t.Errorf("mistake %q names no test", m.mistake)
		}
		for _, name := range m.tests {
			if !defined[name] {
				t.Errorf("mistake %q: no test %s in cmd/ferry", m.mistake, name)
			}
		}
	}
}
