package argocd_test

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// docValue is a default as the docs write it: "20m", "60 s", "3", "fail".
const docValue = `(\d+(?:\.\d+)? ?(?:ms|s|m|h)(?:\d+(?:ms|s|m|h))*|\d+|fail|wait|override)`

// TestDocsStateDefaults: docs/sync.md's table of defaults has a row for every option with a
// default, with the value of argocd.DefaultSyncOptions, and every default written in the prose of
// docs/sync.md or docs/cli.md (`--timeout` (20m), "no pick-up within 60 s", "retries 3× with
// backoff 5s", …) is the engine's.
func TestDocsStateDefaults(t *testing.T) {
	def := reflect.ValueOf(argocd.DefaultSyncOptions)
	// same reports whether the documented s is the default of the SyncOptions field.
	same := func(field, s string) bool {
		v := def.FieldByName(field)
		switch x := v.Interface().(type) {
		case time.Duration:
			d, err := time.ParseDuration(strings.ReplaceAll(s, " ", ""))
			if s == "0" {
				d, err = 0, nil
			}
			return err == nil && d == x
		case int:
			n, err := strconv.Atoi(s)
			return err == nil && n == x
		case argocd.WindowPolicy:
			return s == string(x)
		}
		t.Fatalf("SyncOptions.%s: no rule for %T", field, v.Interface())
		return false
	}

	raw, err := os.ReadFile("../../docs/sync.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(raw), "\n## Defaults\n")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := regexp.MustCompile("(?m)^\\| `(\\w+)` \\|.*\\| ([^|]+?) \\|$").FindAllStringSubmatch(section, -1)
	documented := map[string]bool{}
	for _, m := range rows {
		if !def.FieldByName(m[1]).IsValid() {
			t.Errorf("docs/sync.md, Defaults: %s is not a field of SyncOptions", m[1])
			continue
		}
		documented[m[1]] = true
		if !same(m[1], m[2]) {
			t.Errorf("docs/sync.md, Defaults: %s %q, want %v (argocd.DefaultSyncOptions)", m[1], m[2], def.FieldByName(m[1]).Interface())
		}
	}
	for _, f := range []string{"Timeout", "HealthTimeout", "StuckAfter", "PickupTimeout", "DegradedGrace", "ConflictWait", "TransientRetries", "RetryBackoff", "WindowPolicy"} {
		if !documented[f] {
			t.Errorf("docs/sync.md, Defaults: no row for %s", f)
		}
	}

	// Defaults written in the prose, wherever they are (whitespace folded, so across line breaks).
	prose := []struct {
		field string
		re    string
	}{
		{"Timeout", "`(?:--timeout|timeouts)` \\(" + docValue + "\\)"},
		// The diagnostic summaries the failure-class table shows, as with the defaults (quoted
		// test results are written in double quotes, not backquotes).
		{"Timeout", "`Sync timed out after " + docValue + "`"},
		{"HealthTimeout", "`(?:--health-timeout|health_timeout)` \\(" + docValue + "\\)"},
		{"StuckAfter", "`(?:--stuck-after|stuck_after)` \\(" + docValue + "\\)"},
		{"StuckAfter", "`Sync stuck: no progress for " + docValue + ":"},
		{"PickupTimeout", "pick-up within " + docValue + "\\b"},
		{"DegradedGrace", "Degraded or Missing for " + docValue + "\\b"},
		{"TransientRetries", "retries " + docValue + "× with backoff"},
		{"RetryBackoff", "× with backoff " + docValue + "\\b"},
		{"WindowPolicy", "`" + docValue + "` \\(the default\\)"},
	}
	for _, file := range []string{"../../docs/sync.md", "../../docs/cli.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(b)), " ")
		// "retries 3× with backoff 5s→20s": the last backoff follows from the two defaults.
		for _, m := range regexp.MustCompile("retries \\d+× with backoff "+docValue+"→"+docValue).FindAllStringSubmatch(text, -1) {
			d := argocd.DefaultSyncOptions
			if last := d.RetryBackoff << (d.TransientRetries - 1); !same("RetryBackoff", m[1]) || strings.ReplaceAll(m[2], " ", "") != argocd.ShortDuration(last) {
				t.Errorf("%s: %q, want the backoff from %v to %v", strings.TrimPrefix(file, "../../"), m[0], d.RetryBackoff, last)
			}
		}
		for _, p := range prose {
			for _, m := range regexp.MustCompile(p.re).FindAllStringSubmatch(text, -1) {
				if !same(p.field, m[1]) {
					t.Errorf("%s: %q states the default %s as %q, want %v (argocd.DefaultSyncOptions)", strings.TrimPrefix(file, "../../"), m[0], p.field, m[1], def.FieldByName(p.field).Interface())
				}
			}
		}
	}
}

// TestShortDuration: durations as the docs and the provider's attributes write them.
func TestShortDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{20 * time.Minute, "20m"}, {time.Hour, "1h"}, {90 * time.Minute, "1h30m"}, {30 * time.Second, "30s"},
		{90 * time.Second, "1m30s"}, {time.Minute, "1m"}, {500 * time.Millisecond, "500ms"}, {0, "0s"},
	}
	for _, tt := range tests {
		if got := argocd.ShortDuration(tt.in); got != tt.want {
			t.Errorf("ShortDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
