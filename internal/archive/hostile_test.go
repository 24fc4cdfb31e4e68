package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Entry types of hostile test archives.
const (
	hReg     = 'f'
	hDir     = 'd'
	hSymlink = 'l'
	hLink    = 'h' // hard link, tar only
	hChar    = 'c'
	hBlock   = 'b'
	hFifo    = 'p'
	hSocket  = 's' // zip only
	hUnknown = '?' // tar only: type 'Z'
)

// sibPlaceholder in a name or link target is replaced by the absolute path of the sibling directory.
const sibPlaceholder = "@SIB@"

// hEntry is one entry of a hostile test archive.
type hEntry struct {
	typ  byte
	name string
	body string
	link string
	mode int64
}

func reg(name, body string) hEntry        { return hEntry{typ: hReg, name: name, body: body} }
func symlink(name, target string) hEntry  { return hEntry{typ: hSymlink, name: name, link: target} }
func hardlink(name, target string) hEntry { return hEntry{typ: hLink, name: name, link: target} }
func dir(name string) hEntry              { return hEntry{typ: hDir, name: name} }

// Archive formats of the hostile tests.
const (
	fmtTar   = "tar"
	fmtTarGz = "tar.gz"
	fmtZip   = "zip"
)

var allFormats = []string{fmtTar, fmtTarGz, fmtZip}

// buildArchive builds entries in format, replacing sibPlaceholder with sib. It returns nil when the format cannot
// express an entry.
func buildArchive(t testing.TB, format string, entries []hEntry, sib string) []byte {
	t.Helper()
	switch format {
	case fmtTar:
		return buildTar(t, entries, sib)
	case fmtTarGz:
		raw := buildTar(t, entries, sib)
		if raw == nil {
			return nil
		}
		return gzipBytes(t, raw)
	case fmtZip:
		return buildZip(t, entries, sib)
	}
	t.Fatalf("unknown format %q", format)
	return nil
}

func gzipBytes(t testing.TB, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func buildTar(t testing.TB, entries []hEntry, sib string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     strings.ReplaceAll(e.name, sibPlaceholder, sib),
			Linkname: strings.ReplaceAll(e.link, sibPlaceholder, sib),
			Mode:     e.mode,
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		switch e.typ {
		case hReg:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		case hDir:
			hdr.Typeflag = tar.TypeDir
		case hSymlink:
			hdr.Typeflag = tar.TypeSymlink
		case hLink:
			hdr.Typeflag = tar.TypeLink
		case hChar:
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, 1, 3
		case hBlock:
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, 8, 0
		case hFifo:
			hdr.Typeflag = tar.TypeFifo
		case hUnknown:
			hdr.Typeflag, hdr.Size = 'Z', int64(len(e.body))
		default:
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar.WriteHeader(%q) = %v", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func buildZip(t testing.TB, entries []hEntry, sib string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: strings.ReplaceAll(e.name, sibPlaceholder, sib), Method: zip.Deflate}
		perm := fs.FileMode(e.mode)
		if perm == 0 {
			perm = 0o644
		}
		body := e.body
		switch e.typ {
		case hReg:
			fh.SetMode(perm)
		case hDir:
			if !strings.HasSuffix(fh.Name, "/") {
				fh.Name += "/"
			}
			fh.SetMode(fs.ModeDir | 0o755)
		case hSymlink:
			fh.SetMode(fs.ModeSymlink | 0o777)
			body = strings.ReplaceAll(e.link, sibPlaceholder, sib)
		case hChar:
			fh.SetMode(fs.ModeDevice | fs.ModeCharDevice | perm)
		case hBlock:
			fh.SetMode(fs.ModeDevice | perm)
		case hFifo:
			fh.SetMode(fs.ModeNamedPipe | perm)
		case hSocket:
			fh.SetMode(fs.ModeSocket | perm)
		default:
			return nil
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lyingZip returns a zip with one deflated file whose content is content but whose headers declare
// declared bytes (with the CRC-32 of the real content).
func lyingZip(t testing.TB, name string, content []byte, declared uint64) []byte {
	t.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(content)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	fh := &zip.FileHeader{
		Name:               name,
		Method:             zip.Deflate,
		CRC32:              crc32.ChecksumIEEE(content),
		CompressedSize64:   uint64(comp.Len()),
		UncompressedSize64: declared,
	}
	fh.SetMode(0o644)
	w, err := zw.CreateRaw(fh)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostileCase is an archive that extraction must reject.
type hostileCase struct {
	name    string
	entries []hEntry
	raw     func(t testing.TB, format string) []byte // instead of entries; nil result: format not applicable
	formats []string                                 // nil: all formats that can express entries
	lim     Limits
	want    error
}

func (c hostileCase) build(t testing.TB, format, sib string) []byte {
	if c.formats != nil && !slices.Contains(c.formats, format) {
		return nil
	}
	if c.raw != nil {
		return c.raw(t, format)
	}
	return buildArchive(t, format, c.entries, sib)
}

func manyFiles(n int) []hEntry {
	var es []hEntry
	for i := range n {
		es = append(es, reg("f"+strings.Repeat("x", i), "x"))
	}
	return es
}

// manyBig returns n files of size zero bytes each.
func manyBig(n, size int) []hEntry {
	var es []hEntry
	zeros := strings.Repeat("\x00", size)
	for i := range n {
		es = append(es, reg(fmt.Sprintf("z%03d", i), zeros))
	}
	return es
}

func hostileCases() []hostileCase {
	zeros := strings.Repeat("\x00", 8<<20)
	return []hostileCase{
		{name: "absolute path", entries: []hEntry{reg(sibPlaceholder+"/pwned", "x")}, want: ErrUnsafeEntry},
		{name: "absolute path to etc", entries: []hEntry{reg("/etc/ferry-pwned", "x")}, want: ErrUnsafeEntry},
		{name: "dotdot", entries: []hEntry{reg("../sibling/pwned", "x")}, want: ErrUnsafeEntry},
		{name: "nested dotdot", entries: []hEntry{dir("a/"), reg("a/../../sibling/pwned", "x")}, want: ErrUnsafeEntry},
		{name: "dotdot staying inside", entries: []hEntry{reg("a/../pwned", "x")}, want: ErrUnsafeEntry},
		{name: "trailing dotdot dir", entries: []hEntry{dir("a/..")}, want: ErrUnsafeEntry},
		{name: "backslash traversal", entries: []hEntry{reg(`..\sibling\pwned`, "x")}, want: ErrUnsafeEntry},
		{name: "windows absolute", entries: []hEntry{reg(`C:\Windows\pwned`, "x")}, want: ErrUnsafeEntry},
		{name: "windows drive with slash", entries: []hEntry{reg("C:/pwned", "x")}, want: ErrUnsafeEntry},
		{name: "NUL in name", entries: []hEntry{reg("a\x00b", "x")}, formats: []string{fmtZip}, want: ErrUnsafeEntry},
		{name: "file named dot", entries: []hEntry{reg(".", "x")}, want: ErrUnsafeEntry},
		{name: "symlink named dot", entries: []hEntry{symlink(".", "x")}, want: ErrUnsafeEntry},
		{name: "pax path traversal", formats: []string{fmtTar, fmtTarGz}, want: ErrUnsafeEntry,
			raw: func(t testing.TB, format string) []byte {
				// The USTAR name field says "xx/sibling/pwnd"; the PAX path record is patched to "../sibling/pwnéd".
				raw := buildTar(t, []hEntry{reg("xx/sibling/pwnéd", "x")}, "")
				patched := bytes.Replace(raw, []byte("path=xx/"), []byte("path=../"), 1)
				if bytes.Equal(patched, raw) {
					t.Fatal("no PAX path record to patch")
				}
				if format == fmtTarGz {
					return gzipBytes(t, patched)
				}
				return patched
			}},
		{name: "symlink to etc", entries: []hEntry{symlink("etc", "/etc")}, want: ErrUnsafeEntry},
		{name: "absolute symlink then write through", entries: []hEntry{symlink("l", sibPlaceholder), reg("l/pwned", "x")},
			want: ErrUnsafeEntry},
		{name: "symlink dotdot dotdot", entries: []hEntry{dir("a"), symlink("a/l", "../..")}, want: ErrUnsafeEntry},
		{name: "symlink to sibling", entries: []hEntry{symlink("l", "../sibling"), reg("l/pwned", "x")}, want: ErrUnsafeEntry},
		{name: "symlink backslash target", entries: []hEntry{symlink("l", `..\..\sibling`)}, want: ErrUnsafeEntry},
		{name: "symlink dot then write through", entries: []hEntry{symlink("l", "."), reg("l/pwned", "x")}, want: ErrUnsafeEntry},
		{name: "symlink dot then dotdot", entries: []hEntry{symlink("l", "."), reg("l/../pwned", "x")}, want: ErrUnsafeEntry},
		{name: "symlink to subdir then write through", entries: []hEntry{dir("sub"), symlink("l", "sub"), reg("l/x", "x")},
			want: ErrUnsafeEntry},
		{name: "symlink then dir through it", entries: []hEntry{symlink("l", "."), dir("l/d")}, want: ErrUnsafeEntry},
		// Lexically "a/x/../../sibling" is "sibling", but with a/x -> "." it resolves to ../sibling.
		{name: "symlink non-leading dotdot", entries: []hEntry{dir("a"), symlink("a/l", "x/../../sibling"), symlink("a/x", ".")},
			want: ErrUnsafeEntry},
		{name: "duplicate overwriting symlink", entries: []hEntry{symlink("l", "target"), reg("l", "x")}, want: ErrUnsafeEntry},
		{name: "duplicate file", entries: []hEntry{reg("f", "x"), reg("f", "y")}, want: ErrUnsafeEntry},
		{name: "duplicate dir", entries: []hEntry{dir("d"), dir("d")}, want: ErrUnsafeEntry},
		{name: "dir over file", entries: []hEntry{reg("f", "x"), dir("f")}, want: ErrUnsafeEntry},
		{name: "file under file", entries: []hEntry{reg("f", "x"), reg("f/g", "y")}, want: ErrUnsafeEntry},
		{name: "hard link out", entries: []hEntry{hardlink("h", "../sibling/secret")}, want: ErrUnsafeEntry},
		{name: "hard link absolute", entries: []hEntry{hardlink("h", sibPlaceholder+"/secret")}, want: ErrUnsafeEntry},
		{name: "hard link to etc passwd", entries: []hEntry{hardlink("h", "/etc/passwd")}, want: ErrUnsafeEntry},
		{name: "hard link to symlink", entries: []hEntry{symlink("l", "x"), hardlink("h", "l")}, want: ErrUnsafeEntry},
		{name: "hard link to dir", entries: []hEntry{dir("d"), hardlink("h", "d")}, want: ErrUnsafeEntry},
		{name: "hard link forward", entries: []hEntry{hardlink("h", "later"), reg("later", "x")}, want: ErrUnsafeEntry},
		{name: "hard link over file", entries: []hEntry{reg("a", "x"), reg("b", "y"), hardlink("b", "a")}, want: ErrUnsafeEntry},
		{name: "char device", entries: []hEntry{{typ: hChar, name: "null"}}, want: ErrUnsafeEntry},
		{name: "block device", entries: []hEntry{{typ: hBlock, name: "sda"}}, want: ErrUnsafeEntry},
		{name: "fifo", entries: []hEntry{{typ: hFifo, name: "pipe"}}, want: ErrUnsafeEntry},
		{name: "socket", entries: []hEntry{{typ: hSocket, name: "sock"}}, want: ErrUnsafeEntry},
		{name: "unknown tar type", entries: []hEntry{{typ: hUnknown, name: "z", body: "x"}}, want: ErrUnsafeEntry},
		{name: "too many entries", entries: manyFiles(11), lim: Limits{MaxEntries: 10}, want: ErrLimitExceeded},
		{name: "too many implied dirs", entries: []hEntry{reg("a/b/c/d/e/f/g", "x")}, lim: Limits{MaxEntries: 4},
			want: ErrLimitExceeded},
		{name: "file over MaxFileSize", entries: []hEntry{reg("big", strings.Repeat("x", 2048))},
			lim: Limits{MaxFileSize: 1024}, want: ErrLimitExceeded},
		{name: "total over MaxTotalSize", lim: Limits{MaxTotalSize: 2500}, want: ErrLimitExceeded, entries: []hEntry{
			reg("a", strings.Repeat("a", 1000)), reg("b", strings.Repeat("b", 1000)), reg("c", strings.Repeat("c", 1000)),
		}},
		{name: "compression bomb", entries: []hEntry{reg("zeros", zeros)}, formats: []string{fmtTarGz, fmtZip},
			lim: Limits{MaxFileSize: 1 << 20}, want: ErrLimitExceeded},
		{name: "tar header claiming 10 GiB", formats: []string{fmtTar, fmtTarGz}, want: ErrLimitExceeded,
			raw: func(t testing.TB, format string) []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 10 << 30, Mode: 0o644}); err != nil {
					t.Fatal(err)
				}
				buf.Write(make([]byte, 4096)) // a little data, then the stream ends
				if format == fmtTarGz {
					return gzipBytes(t, buf.Bytes())
				}
				return buf.Bytes()
			}},
		{name: "zip lying size bomb", formats: []string{fmtZip}, lim: Limits{MaxFileSize: 1 << 20}, want: ErrLimitExceeded,
			raw: func(t testing.TB, format string) []byte { return lyingZip(t, "bomb", []byte(zeros), 100) }},
		// Within the size limits, but expanding far more than real content does.
		{name: "ratio bomb", entries: []hEntry{reg("zeros", strings.Repeat("\x00", 64<<20))}, formats: []string{fmtTarGz, fmtZip},
			want: ErrLimitExceeded},
		// Every entry under RatioFloor, the archive as a whole over the ratio.
		{name: "ratio bomb of small entries", entries: manyBig(24, 1<<20), formats: []string{fmtTarGz, fmtZip}, want: ErrLimitExceeded},
		{name: "zip lying size small", formats: []string{fmtZip}, want: ErrInvalidArchive,
			raw: func(t testing.TB, format string) []byte {
				return lyingZip(t, "liar", []byte(strings.Repeat("y", 5000)), 10)
			}},
		{name: "zip declared size too big", formats: []string{fmtZip}, want: ErrInvalidArchive,
			raw: func(t testing.TB, format string) []byte { return lyingZip(t, "liar", []byte("short"), 5000) }},
	}
}

// setupBase creates base/sibling holding a secret file and returns its path; extraction goes to base/dest.
func setupBase(t testing.TB, base string) string {
	t.Helper()
	sib := filepath.Join(base, "sibling")
	if err := os.Mkdir(sib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sib, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	return sib
}

// checkContained checks that nothing but the destinations dests changed under base, and that the extracted trees
// have normalized modes and symlinks staying inside them.
func checkContained(t testing.TB, base string, dests ...string) {
	t.Helper()
	allowed := map[string]bool{"sibling": true}
	for _, d := range dests {
		allowed[filepath.Base(d)] = true
	}
	ents, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !allowed[e.Name()] {
			t.Errorf("extraction created %q next to the destination", e.Name())
		}
	}
	sib := filepath.Join(base, "sibling")
	ents, err = os.ReadDir(sib)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("sibling directory holds %q, want only secret", names)
	}
	info, err := os.Lstat(filepath.Join(sib, "secret"))
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o644 || info.Size() != 6 || nlink(info) != 1 {
		t.Errorf("sibling secret = %v, %v, want untouched regular file", info, err)
	}
	for _, d := range dests {
		realDest, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue // not created
		}
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("walking %s: %v", p, err)
				return nil
			}
			info, err := de.Info()
			if err != nil {
				t.Errorf("stat %s: %v", p, err)
				return nil
			}
			m := info.Mode()
			switch m.Type() {
			case fs.ModeDir:
				if p != d && m.Perm() != 0o755 {
					t.Errorf("directory %s has mode %v, want 0755", p, m)
				}
			case 0:
				if m.Perm() != 0o644 && m.Perm() != 0o755 || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
					t.Errorf("file %s has mode %v, want 0644 or 0755", p, m)
				}
			case fs.ModeSymlink:
				if r, err := filepath.EvalSymlinks(p); err == nil && r != realDest && !strings.HasPrefix(r, realDest+string(filepath.Separator)) {
					t.Errorf("symlink %s resolves to %s, outside %s", p, r, realDest)
				}
			default:
				t.Errorf("%s has special mode %v", p, m)
			}
			return nil
		})
	}
}

// extractors runs the extractor for format.
func extract(format string, data []byte, dest string, lim Limits) error {
	switch format {
	case fmtTar:
		return ExtractTar(bytes.NewReader(data), dest, lim)
	case fmtTarGz:
		return ExtractTarGz(bytes.NewReader(data), dest, lim)
	default:
		return ExtractZip(bytes.NewReader(data), int64(len(data)), dest, lim)
	}
}

var extractName = map[string]string{fmtTar: "ExtractTar", fmtTarGz: "ExtractTarGz", fmtZip: "ExtractZip"}

func TestExtractHostile(t *testing.T) {
	ran := 0
	for _, tc := range hostileCases() {
		for _, format := range allFormats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				base := t.TempDir()
				sib := setupBase(t, base)
				data := tc.build(t, format, sib)
				if data == nil {
					t.Skipf("%s cannot express this case", format)
				}
				ran++
				dest := filepath.Join(base, "dest")
				if got := extract(format, data, dest, tc.lim); !errors.Is(got, tc.want) {
					t.Errorf("%s() = %v, want %v", extractName[format], got, tc.want)
				}
				checkContained(t, base, dest)
			})
		}
	}
	if ran < 15*3 {
		t.Errorf("ran %d hostile archives, want at least 45", ran)
	}
}

func TestExtractMalformed(t *testing.T) {
	valid := writeZipBytes(t, memFiles([]spec{fileSpec("a.txt", strings.Repeat("hello ", 100))}, 0o644), Options{})
	stored := writeZipBytes(t, memFiles([]spec{bytesSpec("r.bin", randomBytes(5, 1000))}, 0o644), Options{})
	corrupt := slices.Clone(stored)
	corrupt[len("PK\x03\x04")+26+len("r.bin")+500] ^= 0xff // flip a content byte: CRC mismatch
	tgz := writeTarGzBytes(t, memFiles([]spec{fileSpec("a.txt", strings.Repeat("hello ", 100))}, 0o644), Options{})
	badCRC := slices.Clone(tgz)
	badCRC[len(badCRC)-8] ^= 0xff // gzip trailer CRC-32
	var unsupported bytes.Buffer
	zw := zip.NewWriter(&unsupported)
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "x", Method: 99, CompressedSize64: 3, UncompressedSize64: 3})
	w.Write([]byte("abc"))
	zw.Close()

	tests := []struct {
		name   string
		format string
		data   []byte
		want   error
	}{
		{"empty tar.gz", fmtTarGz, nil, ErrInvalidArchive},
		{"garbage tar.gz", fmtTarGz, []byte("this is not gzip at all"), ErrInvalidArchive},
		{"truncated tar.gz", fmtTarGz, tgz[:len(tgz)/2], ErrInvalidArchive},
		{"gzip checksum", fmtTarGz, badCRC, ErrInvalidArchive},
		{"garbage tar", fmtTar, bytes.Repeat([]byte("garbage!"), 100), ErrInvalidArchive},
		{"empty zip", fmtZip, nil, ErrInvalidArchive},
		{"truncated zip", fmtZip, valid[:len(valid)-10], ErrInvalidArchive},
		{"zip CRC mismatch", fmtZip, corrupt, ErrInvalidArchive},
		{"zip unsupported method", fmtZip, unsupported.Bytes(), ErrInvalidArchive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			setupBase(t, base)
			dest := filepath.Join(base, "dest")
			if got := extract(tt.format, tt.data, dest, Limits{}); !errors.Is(got, tt.want) {
				t.Errorf("%s() = %v, want %v", extractName[tt.format], got, tt.want)
			}
			checkContained(t, base, dest)
		})
	}
}

// TestExtractAccepted covers archives from other writers that must extract fine, with normalized modes.
func TestExtractAccepted(t *testing.T) {
	entries := []hEntry{
		dir("./"),
		{typ: hReg, name: "./setuid", body: "x", mode: 0o4777},
		{typ: hReg, name: "world-writable", body: "y", mode: 0o666},
		{typ: hReg, name: "exec-group-only", body: "z", mode: 0o610},
		{typ: hDir, name: "d/", mode: 0o777},
		reg("d//e/./f", "nested"),
		dir("d/e"), // explicit entry for a directory created implicitly before
		symlink("d/e/up", "../../setuid"),
		hardlink("d/hard", "world-writable"),
	}
	want := map[string]treeNode{
		"setuid":          {kind: 'f', perm: 0o755, body: "x"},
		"world-writable":  {kind: 'f', perm: 0o644, body: "y"},
		"exec-group-only": {kind: 'f', perm: 0o755, body: "z"},
		"d":               {kind: 'd', perm: 0o755},
		"d/e":             {kind: 'd', perm: 0o755},
		"d/e/f":           {kind: 'f', perm: 0o644, body: "nested"},
		"d/e/up":          {kind: 'l', link: "../../setuid"},
		"d/hard":          {kind: 'f', perm: 0o644, body: "y"},
	}
	for _, format := range allFormats {
		t.Run(format, func(t *testing.T) {
			es := entries
			if format == fmtZip {
				es = slices.DeleteFunc(slices.Clone(entries), func(e hEntry) bool { return e.typ == hLink })
			}
			base := t.TempDir()
			setupBase(t, base)
			dest := filepath.Join(base, "dest")
			if err := os.Mkdir(dest, 0o700); err != nil { // an existing empty destination is fine
				t.Fatal(err)
			}
			data := buildArchive(t, format, es, "")
			if err := extract(format, data, dest, Limits{}); err != nil {
				t.Fatalf("%s() = %v, want nil", extractName[format], err)
			}
			w := want
			if format == fmtZip {
				w = without(want, "d/hard")
			}
			diffTrees(t, readTree(t, dest), w)
			checkContained(t, base, dest)
			if format != fmtZip {
				a, _ := os.Stat(filepath.Join(dest, "world-writable"))
				b, _ := os.Stat(filepath.Join(dest, "d/hard"))
				if !os.SameFile(a, b) {
					t.Errorf("d/hard is not a hard link to world-writable")
				}
			}
		})
	}
}

// without returns m without the keys drop.
func without(m map[string]treeNode, drop ...string) map[string]treeNode {
	out := map[string]treeNode{}
	for k, v := range m {
		if !slices.Contains(drop, k) {
			out[k] = v
		}
	}
	return out
}

func TestExtractLimitsExact(t *testing.T) {
	entries := []hEntry{reg("a", strings.Repeat("a", 1000)), reg("b", strings.Repeat("b", 1000))}
	tests := []struct {
		name string
		lim  Limits
		want error
	}{
		{"at the limits", Limits{MaxEntries: 2, MaxFileSize: 1000, MaxTotalSize: 2000}, nil},
		{"one entry too many", Limits{MaxEntries: 1}, ErrLimitExceeded},
		{"one byte over file size", Limits{MaxFileSize: 999}, ErrLimitExceeded},
		{"one byte over total size", Limits{MaxTotalSize: 1999}, ErrLimitExceeded},
		{"negative means default", Limits{MaxEntries: -1, MaxFileSize: -1, MaxTotalSize: -1}, nil},
	}
	for _, tt := range tests {
		for _, format := range allFormats {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				base := t.TempDir()
				setupBase(t, base)
				dest := filepath.Join(base, "dest")
				if got := extract(format, buildArchive(t, format, entries, ""), dest, tt.lim); !errors.Is(got, tt.want) {
					t.Errorf("%s() = %v, want %v", extractName[format], got, tt.want)
				}
			})
		}
	}
}

func TestExtractNotEmpty(t *testing.T) {
	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, "existing"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	data := buildArchive(t, fmtTarGz, []hEntry{reg("existing", "x")}, "")
	if err := ExtractTarGz(bytes.NewReader(data), dest, Limits{}); err == nil {
		t.Errorf("ExtractTarGz() = nil, want an error for a non-empty destination")
	}
}

func TestExtractTarGzStreams(t *testing.T) {
	specs := []spec{fileSpec("a.txt", strings.Repeat("a", 3000)), fileSpec("b/c.txt", "c")}
	tgz := writeTarGzBytes(t, memFiles(specs, 0o644), Options{})
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"single member", tgz},
		{"trailing zeros", append(slices.Clone(tgz), make([]byte, 1024)...)},
		{"two members", append(gzipBytes(t, raw[:1000]), gzipBytes(t, raw[1000:])...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "dest")
			if err := ExtractTarGz(bytes.NewReader(tt.data), dest, Limits{}); err != nil {
				t.Fatalf("ExtractTarGz() = %v, want nil", err)
			}
			diffTrees(t, readTree(t, dest), wantTree(specs))
		})
	}
}

// TestExtractLongNames: a hostile name is cut in the error, not repeated whole.
func TestExtractLongNames(t *testing.T) {
	long := strings.Repeat("é", 2500) // 5,000 bytes
	for _, tc := range []struct {
		name    string
		entries []hEntry
	}{
		{"traversal", []hEntry{reg("../"+long, "x")}},
		{"symlink target", []hEntry{symlink("l", "/"+long)}},
		{"over the entry limit", []hEntry{reg("a", "x"), reg(long[:250], "x")}},
	} {
		for _, format := range allFormats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				err := extract(format, buildArchive(t, format, tc.entries, ""), t.TempDir(), Limits{MaxEntries: 1})
				if err == nil {
					t.Fatal("extract succeeded")
				}
				if len(err.Error()) > 400 {
					t.Errorf("error is %d bytes long: %.200s…", len(err.Error()), err)
				}
				if !utf8.ValidString(err.Error()) {
					t.Errorf("error is not valid UTF-8: %q", err)
				}
			})
		}
	}
}

// TestExtractRatioAccepted: content that compresses like real releases passes the default ratio limit, and a
// higher MaxRatio lets a highly compressible file through.
func TestExtractRatioAccepted(t *testing.T) {
	text := make([]byte, 0, 24<<20)
	for i := 0; len(text) < 24<<20; i++ {
		text = fmt.Appendf(text, "  - name: item-%d\n    value: %x\n", i, i*2654435761)
	}
	zeros := strings.Repeat("\x00", 16<<20)
	for _, format := range []string{fmtTarGz, fmtZip} {
		t.Run(format, func(t *testing.T) {
			if err := extract(format, buildArchive(t, format, []hEntry{reg("values.yaml", string(text))}, ""), t.TempDir(), Limits{}); err != nil {
				t.Errorf("24 MiB of YAML: %v", err)
			}
			if err := extract(format, buildArchive(t, format, []hEntry{reg("zeros", zeros)}, ""), t.TempDir(), Limits{MaxRatio: 2000}); err != nil {
				t.Errorf("16 MiB of zeros with MaxRatio 2000: %v", err)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.yaml", `"a.yaml"`},
		{strings.Repeat("x", 100), `"` + strings.Repeat("x", 100) + `"`},
		{strings.Repeat("x", 101), `"` + strings.Repeat("x", 100) + `"… (1 more bytes)`},
		{"x" + strings.Repeat("é", 60), `"x` + strings.Repeat("é", 49) + `"… (22 more bytes)`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%.20q…) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestExtractCancelled: a cancelled context stops extraction between entries and between reads.
func TestExtractCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	entries := []hEntry{reg("a", "x"), reg("b", strings.Repeat("y", 1<<20))}
	for _, format := range []string{fmtTarGz, fmtZip} {
		t.Run(format, func(t *testing.T) {
			data := buildArchive(t, format, entries, "")
			root, err := os.OpenRoot(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			if format == fmtZip {
				err = ExtractZipIn(ctx, bytes.NewReader(data), int64(len(data)), root, Limits{})
			} else {
				err = ExtractTarGzIn(ctx, bytes.NewReader(data), root, Limits{})
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("extract with a cancelled context = %v, want context.Canceled", err)
			}
		})
	}
}
