package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// spec describes one file of a test file set.
type spec struct {
	path string
	kind byte // 'f' regular file, 'd' directory, 'l' symlink
	body string
	exec bool
	link string
}

func fileSpec(path, body string) spec      { return spec{path: path, kind: 'f', body: body} }
func execSpec(path, body string) spec      { return spec{path: path, kind: 'f', body: body, exec: true} }
func dirSpec(path string) spec             { return spec{path: path, kind: 'd'} }
func linkSpec(path, target string) spec    { return spec{path: path, kind: 'l', link: target} }
func bytesSpec(path string, b []byte) spec { return spec{path: path, kind: 'f', body: string(b)} }

// memFiles returns specs as in-memory Files; perm is the permission of non-executable files (executable files
// get perm|0o111).
func memFiles(specs []spec, perm fs.FileMode) []File {
	files := make([]File, 0, len(specs))
	for _, s := range specs {
		switch s.kind {
		case 'f':
			m := perm
			if s.exec {
				m |= 0o111
			}
			body := s.body
			files = append(files, File{Path: s.path, Mode: m, Size: int64(len(body)), Open: func() (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader(body)), nil
			}})
		case 'd':
			files = append(files, File{Path: s.path, Mode: fs.ModeDir | 0o700})
		case 'l':
			files = append(files, File{Path: s.path, Mode: fs.ModeSymlink | 0o777, Linkname: s.link})
		}
	}
	return files
}

// writeTree creates specs under dir with the given permission for non-executable files and modification time.
func writeTree(t *testing.T, dir string, specs []spec, perm fs.FileMode, mtime time.Time) {
	t.Helper()
	for _, s := range specs {
		p := filepath.Join(dir, filepath.FromSlash(s.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch s.kind {
		case 'f':
			m := perm
			if s.exec {
				m |= 0o100
			}
			if err := os.WriteFile(p, []byte(s.body), m); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, m); err != nil {
				t.Fatal(err)
			}
		case 'd':
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case 'l':
			if err := os.Symlink(s.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// treeNode is what readTree reports for one path.
type treeNode struct {
	kind byte
	perm fs.FileMode
	body string
	link string
}

// readTree returns the tree under dir, keyed by slash-separated relative path.
func readTree(t *testing.T, dir string) map[string]treeNode {
	t.Helper()
	tree := map[string]treeNode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		n := treeNode{perm: info.Mode().Perm()}
		switch info.Mode().Type() {
		case 0:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.kind, n.body = 'f', string(b)
		case fs.ModeDir:
			n.kind = 'd'
		case fs.ModeSymlink:
			n.kind, n.perm = 'l', 0
			if n.link, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			n.kind = '?'
		}
		tree[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// wantTree is the tree that extracting specs must produce: normalized modes, implied directories.
func wantTree(specs []spec) map[string]treeNode {
	tree := map[string]treeNode{}
	for _, s := range specs {
		for i := range len(s.path) {
			if s.path[i] == '/' {
				tree[s.path[:i]] = treeNode{kind: 'd', perm: 0o755}
			}
		}
		switch s.kind {
		case 'f':
			perm := fs.FileMode(0o644)
			if s.exec {
				perm = 0o755
			}
			tree[s.path] = treeNode{kind: 'f', perm: perm, body: s.body}
		case 'd':
			tree[s.path] = treeNode{kind: 'd', perm: 0o755}
		case 'l':
			tree[s.path] = treeNode{kind: 'l', link: s.link}
		}
	}
	return tree
}

func diffTrees(t *testing.T, got, want map[string]treeNode) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("extracted tree lacks %q", p)
			continue
		}
		if g.kind != w.kind || g.perm != w.perm || g.link != w.link || g.body != w.body {
			t.Errorf("extracted %q = {kind %c perm %v link %q len %d}, want {kind %c perm %v link %q len %d}",
				p, g.kind, g.perm, g.link, len(g.body), w.kind, w.perm, w.link, len(w.body))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("extracted tree has unexpected %q", p)
		}
	}
}

func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func textBytes(n int) []byte {
	const line = "resource \"ferry_thing\" \"example\" { name = \"value\" count = 3 }\n"
	return []byte(strings.Repeat(line, n/len(line)+1)[:n])
}

var longComponent = strings.Repeat("n", 200) + ".txt"

// sampleSpecs is a file set exercising every entry kind.
func sampleSpecs() []spec {
	return []spec{
		fileSpec("README.md", "# ferry\n\nHello.\n"),
		execSpec("bin/ferry", "#!/bin/sh\necho ferry\n"),
		fileSpec("a-b", "sorts before a/ by byte\n"),
		fileSpec("a/b/c.txt", strings.Repeat("nested text ", 50)),
		fileSpec("a/empty.txt", ""),
		dirSpec("empty-dir"),
		linkSpec("link-to-readme", "README.md"),
		linkSpec("a/b/up", "../../README.md"),
		linkSpec("a/dirlink", "b"),
		fileSpec("unicodé/名前.txt", "non-ASCII names need PAX in tar\n"),
		fileSpec(strings.Repeat("long-directory-name/", 8)+"file.txt", "a path longer than 100 bytes, split for USTAR\n"),
		fileSpec("a/"+longComponent, "a name component longer than 100 bytes needs a GNU long name\n"),
		linkSpec("a/longlink", longComponent),
	}
}

func writeTarGzBytes(t testing.TB, files []File, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTarGz(&buf, files, opts); err != nil {
		t.Fatalf("WriteTarGz() = %v, want nil", err)
	}
	return buf.Bytes()
}

func writeZipBytes(t testing.TB, files []File, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteZip(&buf, files, opts); err != nil {
		t.Fatalf("WriteZip() = %v, want nil", err)
	}
	return buf.Bytes()
}

func TestWriteDeterministic(t *testing.T) {
	specs := sampleSpecs()
	reversed := slices.Clone(specs)
	slices.Reverse(reversed)
	shuffled := slices.Clone(specs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	diskA, diskB := t.TempDir(), t.TempDir()
	writeTree(t, diskA, specs, 0o644, time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC))
	writeTree(t, diskB, reversed, 0o600, time.Now())
	if os.Getuid() == 0 {
		// Different owners are only possible as root.
		filepath.WalkDir(diskB, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				os.Lchown(p, 1234, 5678)
			}
			return err
		})
	}
	collect := func(dir string) []File {
		files, err := Collect(dir)
		if err != nil {
			t.Fatalf("Collect() = %v, want nil", err)
		}
		return files
	}

	inputs := []struct {
		name  string
		files []File
	}{
		{"memory sorted 0644", memFiles(specs, 0o644)},
		{"memory reversed 0600", memFiles(reversed, 0o600)},
		{"memory shuffled 0444", memFiles(shuffled, 0o444)},
		{"disk 0644 old mtime", collect(diskA)},
		{"disk 0600 new mtime", collect(diskB)},
	}
	writers := []struct {
		name  string
		write func(testing.TB, []File, Options) []byte
	}{
		{"tar.gz", writeTarGzBytes},
		{"zip", writeZipBytes},
	}
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			want := w.write(t, inputs[0].files, Options{})
			for _, in := range inputs {
				for round := range 2 {
					got := w.write(t, in.files, Options{})
					if !bytes.Equal(got, want) {
						t.Errorf("%s round %d: output (%d bytes, sha256 %s) differs from reference (%d bytes, sha256 %s)",
							in.name, round, len(got), sha(got), len(want), sha(want))
					}
				}
			}
		})
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// goldenSpecs is the fixed input of TestWriteGolden.
func goldenSpecs() []spec {
	return []spec{
		execSpec("bin/tool", "#!/bin/sh\necho hi\n"),
		fileSpec("README.md", strings.Repeat("ferry golden file\n", 20)),
		fileSpec("docs/guide.txt", "guide\n"),
		dirSpec("empty"),
		linkSpec("link", "README.md"),
		bytesSpec("data.bin", randomBytes(7, 4096)),
	}
}

// TestWriteGolden pins the output bytes: a change in them (a code change, or a Go release changing
// compress/flate) must be deliberate.
func TestWriteGolden(t *testing.T) {
	files := memFiles(goldenSpecs(), 0o644)
	opts := Options{ModTime: time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)}
	tests := []struct {
		name  string
		write func(testing.TB, []File, Options) []byte
		opts  Options
		want  string
	}{
		{"tar.gz default time", writeTarGzBytes, Options{}, "172d0e197d92c30ce2afa4c6c732154632e3bf64546a9272572448e39cbea525"},
		{"tar.gz fixed time", writeTarGzBytes, opts, "8aec8f4e4cc6bf362fcfccf06da5982c26ee652ccaab703f067642caff3b05d8"},
		{"zip default time", writeZipBytes, Options{}, "2a54e995685b206a5014679d110c7e1843fdc33ba6f6fa9925251c9050e5d651"},
		{"zip fixed time", writeZipBytes, opts, "186e4ff4e2e79ea33a9911c1a5f35ef9984c2d60c3fe9c0b4935c2b7608c08ec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sha(tt.write(t, files, tt.opts)); got != tt.want {
				t.Errorf("sha256(output) = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWriteTarGzHeaders(t *testing.T) {
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 500e6, time.FixedZone("X", 3600))
	wantTime := time.Date(2024, 5, 6, 6, 8, 8, 0, time.UTC)
	data := writeTarGzBytes(t, memFiles(sampleSpecs(), 0o600), Options{ModTime: mtime})

	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() || zr.OS != 255 || zr.Extra != nil {
		t.Errorf("gzip header = %+v, want empty name, zero ModTime, OS 255", zr.Header)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar.Next() = %v, want nil", err)
		}
		names = append(names, hdr.Name)
		t.Run(hdr.Name, func(t *testing.T) {
			if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
				t.Errorf("owner = %d/%d %q/%q, want 0/0 empty", hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
			}
			if !hdr.ModTime.Equal(wantTime) || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
				t.Errorf("times = %v %v %v, want %v and zero atime/ctime", hdr.ModTime, hdr.AccessTime, hdr.ChangeTime, wantTime)
			}
			var wantMode int64
			switch {
			case hdr.Typeflag == tar.TypeDir:
				wantMode = 0o755
			case hdr.Typeflag == tar.TypeSymlink:
				wantMode = 0o777
			case hdr.Name == "bin/ferry":
				wantMode = 0o755
			default:
				wantMode = 0o644
			}
			if hdr.Mode != wantMode {
				t.Errorf("Mode = %o, want %o", hdr.Mode, wantMode)
			}
			wantFormat := tar.FormatUSTAR
			if strings.Contains(hdr.Name+hdr.Linkname, longComponent) ||
				strings.ContainsFunc(hdr.Name, func(r rune) bool { return r >= 0x80 }) {
				wantFormat = tar.FormatGNU
			}
			if hdr.Format != wantFormat || hdr.PAXRecords != nil {
				t.Errorf("Format = %v, PAXRecords = %v, want %v without PAX records", hdr.Format, hdr.PAXRecords, wantFormat)
			}
		})
	}
	want := []string{
		"README.md", "a/", "a-b", "a/b/", "a/b/c.txt", "a/b/up", "a/dirlink", "a/empty.txt", "a/longlink", "a/" + longComponent,
		"bin/", "bin/ferry",
		"empty-dir/", "link-to-readme",
	}
	long := ""
	for _, d := range strings.SplitAfter(strings.Repeat("long-directory-name/", 8), "/") {
		if d != "" {
			long += d
			want = append(want, long)
		}
	}
	want = append(want, long+"file.txt", "unicodé/", "unicodé/名前.txt")
	if !slices.Equal(names, want) {
		t.Errorf("tar entries = %q, want %q", names, want)
	}
}

func TestWriteZipHeaders(t *testing.T) {
	random := randomBytes(1, 3<<20)
	text := textBytes(3 << 20)
	specs := append(sampleSpecs(),
		bytesSpec("random.bin", random),
		bytesSpec("small-random.bin", random[:1000]),
		bytesSpec("text.txt", text),
		bytesSpec("half.bin", append(slices.Clone(random[:600<<10]), text[:600<<10]...)),
		bytesSpec("mostly-random.bin", append(slices.Clone(random[:950<<10]), text[:500<<10]...)),
	)
	data := writeZipBytes(t, memFiles(specs, 0o600), Options{})
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	wantTime := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	wantMethod := map[string]uint16{
		"random.bin":        zip.Store,
		"small-random.bin":  zip.Store,
		"text.txt":          zip.Deflate,
		"README.md":         zip.Store, // 16 bytes do not shrink
		"a/b/c.txt":         zip.Deflate,
		"a/empty.txt":       zip.Store,
		"half.bin":          zip.Deflate, // sample: 600 KiB random + 424 KiB text, ~60%
		"mostly-random.bin": zip.Store,   // sample: 950 KiB random + 74 KiB text, ~93%
		"link-to-readme":    zip.Store,
		"a/":                zip.Store,
	}
	for _, f := range zr.File {
		t.Run(f.Name, func(t *testing.T) {
			if len(f.Extra) != 0 {
				t.Errorf("Extra = %x, want none", f.Extra)
			}
			if !f.Modified.Equal(wantTime) || f.ModifiedDate != 1<<5|1 || f.ModifiedTime != 0 {
				t.Errorf("Modified = %v (%#x %#x), want %v", f.Modified, f.ModifiedDate, f.ModifiedTime, wantTime)
			}
			if f.CreatorVersion != 3<<8|20 {
				t.Errorf("CreatorVersion = %#x, want %#x", f.CreatorVersion, 3<<8|20)
			}
			if m, ok := wantMethod[f.Name]; ok && f.Method != m {
				t.Errorf("Method = %d, want %d", f.Method, m)
			}
			var wantMode fs.FileMode
			switch {
			case strings.HasSuffix(f.Name, "/"):
				wantMode = fs.ModeDir | 0o755
			case f.Name == "link-to-readme" || f.Name == "a/b/up" || f.Name == "a/dirlink" || f.Name == "a/longlink":
				wantMode = fs.ModeSymlink | 0o777
			case f.Name == "bin/ferry":
				wantMode = 0o755
			default:
				wantMode = 0o644
			}
			if f.Mode() != wantMode {
				t.Errorf("Mode() = %v, want %v", f.Mode(), wantMode)
			}
		})
	}
	for _, f := range zr.File {
		if f.Name == "link-to-readme" {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			if got, want := string(b), "README.md"; got != want {
				t.Errorf("symlink content = %q, want %q", got, want)
			}
		}
	}
}

func TestWriteModTime(t *testing.T) {
	files := memFiles([]spec{fileSpec("f", "x")}, 0o644)
	tests := []struct {
		name    string
		mtime   time.Time
		want    time.Time
		wantErr bool
	}{
		{"zero", time.Time{}, time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"odd second truncated", time.Date(2020, 6, 7, 8, 9, 11, 999, time.UTC), time.Date(2020, 6, 7, 8, 9, 10, 0, time.UTC), false},
		{"zone converted", time.Date(2020, 6, 7, 8, 0, 0, 0, time.FixedZone("E", -5*3600)), time.Date(2020, 6, 7, 13, 0, 0, 0, time.UTC), false},
		{"before 1980", time.Date(1979, 12, 31, 23, 59, 59, 0, time.UTC), time.Time{}, true},
		{"after 2107", time.Date(2108, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tb, zb bytes.Buffer
			terr := WriteTarGz(&tb, files, Options{ModTime: tt.mtime})
			zerr := WriteZip(&zb, files, Options{ModTime: tt.mtime})
			if (terr != nil) != tt.wantErr || (zerr != nil) != tt.wantErr {
				t.Fatalf("WriteTarGz() = %v, WriteZip() = %v, want error %v", terr, zerr, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			zr, _ := gzip.NewReader(&tb)
			hdr, err := tar.NewReader(zr).Next()
			if err != nil {
				t.Fatal(err)
			}
			if !hdr.ModTime.Equal(tt.want) {
				t.Errorf("tar ModTime = %v, want %v", hdr.ModTime, tt.want)
			}
			r, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.File[0].Modified; !got.Equal(tt.want) {
				t.Errorf("zip Modified = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWriteRejects(t *testing.T) {
	dev := File{Path: "dev", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o644}
	tests := []struct {
		name  string
		files []File
		want  error
	}{
		{"dot slash", memFiles([]spec{fileSpec("./a", "x")}, 0o644), ErrUnsafeEntry},
		{"dotdot inside", memFiles([]spec{fileSpec("a/../b", "x")}, 0o644), ErrUnsafeEntry},
		{"dotdot", memFiles([]spec{fileSpec("../b", "x")}, 0o644), ErrUnsafeEntry},
		{"absolute", memFiles([]spec{fileSpec("/etc/passwd", "x")}, 0o644), ErrUnsafeEntry},
		{"double slash", memFiles([]spec{fileSpec("a//b", "x")}, 0o644), ErrUnsafeEntry},
		{"trailing slash", memFiles([]spec{dirSpec("a/")}, 0o644), ErrUnsafeEntry},
		{"empty", memFiles([]spec{fileSpec("", "x")}, 0o644), ErrUnsafeEntry},
		{"backslash", memFiles([]spec{fileSpec(`a\b`, "x")}, 0o644), ErrUnsafeEntry},
		{"duplicate", memFiles([]spec{fileSpec("a", "x"), fileSpec("a", "y")}, 0o644), ErrUnsafeEntry},
		{"duplicate dir", memFiles([]spec{dirSpec("a"), dirSpec("a")}, 0o644), ErrUnsafeEntry},
		{"file under file", memFiles([]spec{fileSpec("a", "x"), fileSpec("a/b", "y")}, 0o644), ErrUnsafeEntry},
		{"file under symlink", memFiles([]spec{dirSpec("d"), linkSpec("l", "d"), fileSpec("l/b", "y")}, 0o644), ErrUnsafeEntry},
		{"symlink escaping", memFiles([]spec{linkSpec("l", "../x")}, 0o644), ErrUnsafeEntry},
		{"symlink absolute", memFiles([]spec{linkSpec("l", "/etc")}, 0o644), ErrUnsafeEntry},
		{"symlink non-leading dotdot", memFiles([]spec{linkSpec("a/l", "x/../y")}, 0o644), ErrUnsafeEntry},
		{"symlink empty", memFiles([]spec{linkSpec("l", "")}, 0o644), ErrUnsafeEntry},
		{"device", []File{dev}, ErrUnsafeEntry},
		{"fifo", []File{{Path: "p", Mode: fs.ModeNamedPipe}}, ErrUnsafeEntry},
		{"short content", []File{{Path: "f", Size: 10, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("12345")), nil
		}}}, errSizeChanged},
		{"long content", []File{{Path: "f", Size: 2, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("12345")), nil
		}}}, errSizeChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WriteTarGz(io.Discard, tt.files, Options{}); !errors.Is(got, tt.want) {
				t.Errorf("WriteTarGz() = %v, want %v", got, tt.want)
			}
			if got := WriteZip(io.Discard, tt.files, Options{}); !errors.Is(got, tt.want) {
				t.Errorf("WriteZip() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	specs := sampleSpecs()
	writeTree(t, dir, specs, 0o640, time.Now())
	files, err := Collect(dir)
	if err != nil {
		t.Fatalf("Collect() = %v, want nil", err)
	}
	want := wantTree(specs)
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		w, ok := want[f.Path]
		if !ok {
			t.Errorf("Collect() returned unexpected %q", f.Path)
			continue
		}
		switch w.kind {
		case 'f':
			if f.Mode.Type() != 0 || f.Size != int64(len(w.body)) || (f.Mode&0o111 != 0) != (w.perm == 0o755) {
				t.Errorf("%q: Mode %v Size %d, want regular, size %d, perm %v", f.Path, f.Mode, f.Size, len(w.body), w.perm)
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != w.body {
				t.Errorf("%q: content %q, want %q", f.Path, b, w.body)
			}
		case 'd':
			if !f.Mode.IsDir() {
				t.Errorf("%q: Mode %v, want a directory", f.Path, f.Mode)
			}
		case 'l':
			if f.Mode.Type() != fs.ModeSymlink || f.Linkname != w.link {
				t.Errorf("%q: Mode %v Linkname %q, want symlink to %q", f.Path, f.Mode, f.Linkname, w.link)
			}
		}
	}
	if len(files) != len(want) {
		t.Errorf("Collect() returned %d files, want %d", len(files), len(want))
	}
	if !slices.IsSorted(paths) {
		t.Errorf("Collect() paths = %q, want sorted", paths)
	}
}

func TestCollectRejects(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"absolute symlink", func(t *testing.T, dir string) { mustSymlink(t, "/etc", filepath.Join(dir, "l")) }},
		{"symlink outside", func(t *testing.T, dir string) { mustSymlink(t, "../outside", filepath.Join(dir, "l")) }},
		{"nested symlink outside", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "a"), 0o755)
			mustSymlink(t, "../../x", filepath.Join(dir, "a", "l"))
		}},
		{"symlink non-leading dotdot", func(t *testing.T, dir string) {
			mustSymlink(t, ".", filepath.Join(dir, "x"))
			mustSymlink(t, "x/../y", filepath.Join(dir, "l"))
		}},
		{"backslash name", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, `a\b`), nil, 0o644) }},
	}
	tests = append(tests, specialFileCases()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("fine"), 0o644)
			tt.setup(t, dir)
			files, err := Collect(dir)
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Errorf("Collect() = %v, %v, want %v", len(files), err, ErrUnsafeEntry)
			}
		})
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	specs := append(sampleSpecs(),
		bytesSpec("big/random.bin", randomBytes(3, 3<<20+17)),
		bytesSpec("big/text.txt", textBytes(3<<20+5)),
		linkSpec("big/to-dir", "../a/b"),
	)
	src := t.TempDir()
	writeTree(t, src, specs, 0o600, time.Now())
	files, err := Collect(src)
	if err != nil {
		t.Fatalf("Collect() = %v, want nil", err)
	}
	want := wantTree(specs)
	tests := []struct {
		name    string
		write   func(testing.TB, []File, Options) []byte
		extract func(data []byte, dir string) error
	}{
		{"tar.gz", writeTarGzBytes, func(data []byte, dir string) error {
			return ExtractTarGz(bytes.NewReader(data), dir, Limits{})
		}},
		{"tar", writeTarGzBytes, func(data []byte, dir string) error {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return err
			}
			return ExtractTar(zr, dir, Limits{})
		}},
		{"zip", writeZipBytes, func(data []byte, dir string) error {
			return ExtractZip(bytes.NewReader(data), int64(len(data)), dir, Limits{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.write(t, files, Options{})
			dest := filepath.Join(t.TempDir(), "missing", "dest")
			if err := tt.extract(data, dest); err != nil {
				t.Fatalf("extract = %v, want nil", err)
			}
			diffTrees(t, readTree(t, dest), want)
			// Extracting again into the same, now non-empty, directory is refused.
			if err := tt.extract(data, dest); err == nil {
				t.Errorf("extract into a non-empty directory = nil, want an error")
			}
		})
	}
}

// BenchmarkWriteZipStore measures the Store path: one 256 MiB file of pseudo-random bytes.
func BenchmarkWriteZipStore(b *testing.B) {
	data := randomBytes(9, 256<<20)
	files := []File{{Path: "random.bin", Mode: 0o644, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteZip(io.Discard, files, Options{}); err != nil {
			b.Fatalf("WriteZip() = %v, want nil", err)
		}
	}
}
