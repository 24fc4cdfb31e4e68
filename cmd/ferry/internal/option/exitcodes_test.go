package option

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestDocExitCodes: docs/cli.md's exit-code table lists exactly the codes of ExitCodes, in order,
// with the same meanings, and its --format json line names exactly the engine classes the table
// maps to codes: the documentation and the code cannot disagree.
func TestDocExitCodes(t *testing.T) {
	doc, err := os.ReadFile("../../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Exit codes\n")
	if start < 0 {
		t.Fatal(`docs/cli.md has no "## Exit codes" section`)
	}
	section := text[start:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	var got []string
	row := regexp.MustCompile(`(?m)^\| (\d+) \| ([^|]+) \|`)
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		got = append(got, m[1]+" "+strings.TrimSpace(m[2]))
	}
	var want []string
	for _, s := range ExitCodes {
		want = append(want, strconv.Itoa(s.Code)+" "+s.Meaning)
	}
	if !slices.Equal(got, want) {
		t.Errorf("docs/cli.md exit codes =\n%s\nwant (option.ExitCodes)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	m := regexp.MustCompile(`"class": "([a-z|]+)"`).FindStringSubmatch(section)
	if m == nil {
		t.Fatal(`docs/cli.md's exit codes section does not show the --format json "class" values`)
	}
	docClasses := strings.Split(m[1], "|")
	var classes []string
	for _, s := range ExitCodes {
		for _, c := range s.Classes {
			classes = append(classes, string(c))
		}
	}
	slices.Sort(docClasses)
	slices.Sort(classes)
	if !slices.Equal(docClasses, classes) {
		t.Errorf("docs/cli.md classes %v, want the classes of option.ExitCodes %v", docClasses, classes)
	}
}

// TestExitCodesInTable: every code ExitCode and ClassCode return is a row of ExitCodes, and each
// engine class exits with the code of its row.
func TestExitCodesInTable(t *testing.T) {
	codes := map[int]bool{}
	for _, s := range ExitCodes {
		if codes[s.Code] {
			t.Errorf("exit code %d is listed twice", s.Code)
		}
		codes[s.Code] = true
	}
	errs := []error{
		nil, errors.New("disk full"), bundle.ErrUnreachable, bundle.ErrImageUnreachable, bundle.ErrInvalidSpec,
		bundle.ErrNotFound, bundle.ErrUntrusted, bundle.ErrArchiveLimit, &Interrupted{Signal: syscall.SIGINT},
		&Interrupted{Signal: syscall.SIGTERM}, Usagef("", "", errors.New("bad flag")),
	}
	for _, err := range errs {
		if c := ExitCode(err); !codes[c] {
			t.Errorf("ExitCode(%v) = %d, not in the exit-code table", err, c)
		}
	}
	for _, tt := range []struct {
		class argocd.Class
		code  int
	}{
		{argocd.ClassSuccess, 0}, {argocd.ClassPermanent, 2}, {argocd.ClassTransient, 3}, {argocd.ClassWindow, 4},
		{argocd.ClassStuck, 5}, {argocd.ClassTimeout, 5}, {argocd.ClassConflict, 6}, {argocd.ClassApproval, 7},
		{argocd.Class("from-a-newer-engine"), 2},
	} {
		if got := ClassCode(tt.class); got != tt.code {
			t.Errorf("ClassCode(%s) = %d, want %d", tt.class, got, tt.code)
		}
	}
	if ExitInterrupted != 130 || ExitTerminated != 143 {
		t.Errorf("interrupt codes = %d, %d; want 130 and 143", ExitInterrupted, ExitTerminated)
	}
}
