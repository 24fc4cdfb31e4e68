package option

import (
	"strings"
	"testing"
)

// TestParseSize: bytes, decimal and binary units in any case, fractions that make whole bytes; and
// errors that say what to write.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "1B": 1, "1MB": 1e6, "1mb": 1e6, "2kB": 2000, "2KB": 2000, "512KiB": 512 << 10, "512kib": 512 << 10,
		"1.5GiB": 3 << 29, "1TB": 1e12, "1TiB": 1 << 40, "64 MiB": 64 << 20, "0.5KiB": 512,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"10x": "not a size; write bytes or a number with a unit, e.g. 512KiB or 1MB", "": "not a size", "MB": "not a size",
		"1e6": "not a size", "1/2": "not a size", "1PB": "not a size", "0": "must be positive", "-5": "must be positive",
		"1.5B": "not a whole number of bytes", "9999999TiB": "too large",
	} {
		if _, err := ParseSize(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSize(%q) error = %v, want %q", in, err, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 512 << 20: "512MiB", 1 << 30: "1GiB", 1e6: "1MB", 1536 << 20: "1536MiB", 1001: "1001"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
