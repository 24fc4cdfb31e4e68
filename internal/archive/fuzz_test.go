package archive

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// fuzzLimits keeps fuzz iterations small and fast.
var fuzzLimits = Limits{MaxEntries: 200, MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20}

// fuzzSib stands for the sibling directory in seed archives (the real one differs per iteration).
const fuzzSib = "/tmp/ferry-fuzz-sibling"

// knownError reports whether err is nil or wraps one of the package's sentinels.
func knownError(err error) bool {
	return err == nil || errors.Is(err, ErrUnsafeEntry) || errors.Is(err, ErrLimitExceeded) || errors.Is(err, ErrInvalidArchive)
}

// seeds adds valid archives and the hostile cases in format (and, for tar.gz, plain tar) to f.
func seeds(f *testing.F, formats ...string) {
	files := memFiles(sampleSpecs(), 0o644)
	for _, format := range formats {
		switch format {
		case fmtTarGz:
			f.Add(writeTarGzBytes(f, files, Options{}))
		case fmtZip:
			f.Add(writeZipBytes(f, files, Options{}))
		}
		for _, tc := range hostileCases() {
			if tc.name == "compression bomb" || tc.name == "zip lying size bomb" {
				continue // megabytes of input slow the fuzzer down
			}
			if data := tc.build(f, format, fuzzSib); data != nil {
				f.Add(data)
			}
		}
	}
}

// FuzzExtractTarGz extracts the input both as a tar.gz and as a plain tar.
func FuzzExtractTarGz(f *testing.F) {
	seeds(f, fmtTarGz, fmtTar)
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		setupBase(t, base)
		destGz, destTar := filepath.Join(base, "dest-gz"), filepath.Join(base, "dest-tar")
		if err := ExtractTarGz(bytes.NewReader(data), destGz, fuzzLimits); !knownError(err) {
			t.Errorf("ExtractTarGz() = %v, want nil or a package sentinel", err)
		}
		if err := ExtractTar(bytes.NewReader(data), destTar, fuzzLimits); !knownError(err) {
			t.Errorf("ExtractTar() = %v, want nil or a package sentinel", err)
		}
		checkContained(t, base, destGz, destTar)
	})
}

func FuzzExtractZip(f *testing.F) {
	seeds(f, fmtZip)
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		setupBase(t, base)
		dest := filepath.Join(base, "dest")
		if err := ExtractZip(bytes.NewReader(data), int64(len(data)), dest, fuzzLimits); !knownError(err) {
			t.Errorf("ExtractZip() = %v, want nil or a package sentinel", err)
		}
		checkContained(t, base, dest)
	})
}
