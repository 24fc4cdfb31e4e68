package archive

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
)

// ExtractTarGz extracts a gzip-compressed tar from r into dir (created if missing; must be empty or absent).
// ExtractTar is the same for an uncompressed tar. [ExtractTarGzIn] and [ExtractZipIn] extract into an open
// [os.Root] instead, so that nothing can be written outside it even if a check were missed.
//
// Directories are created with mode 0755, regular files with 0644 or, when any executable bit is set in the
// header, 0755; ownership, timestamps and other mode bits (setuid, setgid, sticky, group and world write) are
// ignored. Symlinks are created as they are once their target is checked; hard links are created only to regular
// files extracted earlier from the same archive. Pax global headers are skipped. Multi-member gzip streams are
// supported; after the tar end marker the rest of the gzip stream is read so its checksum is verified, ignoring
// trailing data that is not a gzip member. On error, dir may be left partially filled.
func ExtractTarGz(r io.Reader, dir string, lim Limits) error {
	return inDir(dir, func(root *os.Root) error { return ExtractTarGzIn(context.Background(), r, root, lim) })
}

// ExtractTarGzIn is [ExtractTarGz] into the directory of root, which must be empty. It stops with
// ctx's error between entries and between reads once ctx is done.
func ExtractTarGzIn(ctx context.Context, r io.Reader, root *os.Root, lim Limits) error {
	lim = lim.withDefaults()
	src := &source{r: r}
	zr, err := gzip.NewReader(src)
	if err != nil {
		return src.classify("", err)
	}
	defer zr.Close()
	return extractTar(ctx, zr, src, root, lim, true)
}

// ExtractTar extracts an uncompressed tar from r into dir with the same rules as ExtractTarGz. It stops reading r
// at the tar end marker.
func ExtractTar(r io.Reader, dir string, lim Limits) error {
	return inDir(dir, func(root *os.Root) error {
		src := &source{r: r}
		return extractTar(context.Background(), src, nil, root, lim.withDefaults(), false)
	})
}

// inDir creates dir if missing and runs extract with it as the root.
func inDir(dir string, extract func(*os.Root) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return extract(root)
}

// streamSlackPerEntry bounds the tar stream bytes that are not file content (headers, padding, PAX records)
// per entry on average, so that a small compressed archive cannot make the extractor decompress without end.
const streamSlackPerEntry = 16 << 10

// extractTar extracts the tar stream r. compressed, when not nil, is the source of the compressed stream r
// comes from, which the ratio limit is checked against; src classifies errors (compressed, or r itself).
func extractTar(ctx context.Context, r io.Reader, compressed *source, root *os.Root, lim Limits, drain bool) error {
	src := compressed
	if src == nil {
		src = r.(*source)
	}
	x, err := newExtractor(ctx, root, lim)
	if err != nil {
		return err
	}
	slack := int64(math.MaxInt64)
	if int64(lim.MaxEntries) < math.MaxInt64/streamSlackPerEntry-1 {
		slack = int64(lim.MaxEntries+1) * streamSlackPerEntry
	}
	stream := &capReader{r: r, n: addSat(lim.MaxTotalSize, slack), compressed: compressed, ratio: lim.MaxRatio}
	tr := tar.NewReader(stream)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// tar.ErrInsecurePath (GODEBUG=tarinsecurepath=0) comes with a valid header: our checks are stricter.
		if err != nil && (hdr == nil || !errors.Is(err, tar.ErrInsecurePath)) {
			return src.classify("", err)
		}
		if err := x.addEntry(hdr.Name); err != nil {
			return err
		}
		if err := x.tarEntry(hdr, dataReader{r: tr, src: src, name: hdr.Name}); err != nil {
			return err
		}
	}
	if drain {
		// Reading the gzip stream to its end verifies the CRC-32 of its last member. Data after a complete
		// member that is not another member (such as zero padding) gives gzip.ErrHeader and is ignored.
		_, err := io.CopyBuffer(io.Discard, readerOnly{stream}, x.buf)
		if err != nil && !errors.Is(err, gzip.ErrHeader) {
			return src.classify("", err)
		}
	}
	return nil
}

func (x *extractor) tarEntry(hdr *tar.Header, data io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar:
		return unsafeEntry(hdr.Name, "character device")
	case tar.TypeBlock:
		return unsafeEntry(hdr.Name, "block device")
	case tar.TypeFifo:
		return unsafeEntry(hdr.Name, "named pipe")
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name)
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(hdr.Name, name, hdr.Mode&0o111 != 0, hdr.Size, data)
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(hdr.Name, name, hdr.Linkname)
	}
	return unsafeEntry(hdr.Name, fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
}

// ExtractZip extracts a zip into dir with the same rules.
//
// Entry types come from FileHeader.Mode: Unix symlinks (content is the target), directories (the content is
// ignored) and regular files; other Unix types are rejected. Only the Store and Deflate methods are supported and
// encrypted entries are rejected. Each file's content is decompressed by ExtractZip itself and must match the
// uncompressed size and CRC-32 of the central directory, otherwise the error wraps ErrInvalidArchive; content
// exceeding Limits gives ErrLimitExceeded first, whatever the headers claim.
func ExtractZip(r io.ReaderAt, size int64, dir string, lim Limits) error {
	return inDir(dir, func(root *os.Root) error { return ExtractZipIn(context.Background(), r, size, root, lim) })
}

// ExtractZipIn is [ExtractZip] into the directory of root, which must be empty. It stops with ctx's
// error between entries and between reads once ctx is done.
func ExtractZipIn(ctx context.Context, r io.ReaderAt, size int64, root *os.Root, lim Limits) error {
	lim = lim.withDefaults()
	src := &source{ra: r, size: size}
	zr, err := zip.NewReader(src, size)
	// zip.ErrInsecurePath (GODEBUG=zipinsecurepath=0) comes with a valid reader: our checks are stricter.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return src.classify("", err)
	}
	if len(zr.File) > lim.MaxEntries {
		return fmt.Errorf("archive: %d entries, more than the limit of %d entries: %w", len(zr.File), lim.MaxEntries, ErrLimitExceeded)
	}
	x, err := newExtractor(ctx, root, lim)
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		if err := x.addEntry(f.Name); err != nil {
			return err
		}
		if err := x.zipEntry(f, src); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(f *zip.File, src *source) error {
	name, err := cleanName(f.Name)
	if err != nil {
		return err
	}
	m := f.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		if name == "" {
			return unsafeEntry(f.Name, "symlink without a name")
		}
		r, err := x.openZip(f, src)
		if err != nil {
			return err
		}
		target, err := io.ReadAll(io.LimitReader(r, maxNameLen+1))
		if err != nil {
			return err
		}
		if len(target) > maxNameLen {
			return unsafeEntry(f.Name, "symlink target too long")
		}
		return x.symlink(f.Name, name, string(target))
	case m.IsDir():
		return x.dir(name)
	case m.Type() == 0:
		r, err := x.openZip(f, src)
		if err != nil {
			return err
		}
		return x.file(f.Name, name, m&0o111 != 0, int64(min(f.UncompressedSize64, math.MaxInt64)), r)
	}
	return unsafeEntry(f.Name, "unsupported file type "+typeName(m))
}

// openZip returns the decompressed content of f, checked against the size and CRC-32 of the central directory
// when the end is reached.
func (x *extractor) openZip(f *zip.File, src *source) (io.Reader, error) {
	if f.Flags&0x1 != 0 {
		return nil, fmt.Errorf("%s: encrypted entry: %w: %w", Quote(f.Name), ErrInvalidArchive, zip.ErrAlgorithm)
	}
	rawReader, err := f.OpenRaw()
	if err != nil {
		return nil, src.classify(f.Name, err)
	}
	raw := &countReader{r: rawReader}
	var r io.Reader
	switch f.Method {
	case zip.Store:
		r = raw
	case zip.Deflate:
		if x.inflater == nil {
			x.inflater = flate.NewReader(raw)
		} else if err := x.inflater.(flate.Resetter).Reset(raw, nil); err != nil {
			return nil, err
		}
		r = x.inflater
	default:
		return nil, fmt.Errorf("%s: compression method %d: %w: %w", Quote(f.Name), f.Method, ErrInvalidArchive, zip.ErrAlgorithm)
	}
	return &zipReader{r: r, raw: raw, f: f, src: src, x: x}, nil
}

// zipReader counts and checksums the decompressed content of a zip entry, and checks the ratio limit for the
// entry and for the whole archive.
type zipReader struct {
	r   io.Reader
	raw *countReader // the entry's compressed bytes
	f   *zip.File
	src *source
	x   *extractor
	n   uint64
	crc uint32
}

func (z *zipReader) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	z.n += uint64(n)
	z.x.inflated += int64(n)
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p[:n])
	if rerr := z.x.checkRatio(z.f.Name, int64(min(z.n, math.MaxInt64)), z.raw.n); rerr != nil {
		return n, rerr
	}
	if rerr := z.x.checkRatio("", z.x.inflated, z.src.size); rerr != nil {
		return n, rerr
	}
	switch {
	case err == io.EOF:
		if z.n != z.f.UncompressedSize64 {
			return n, z.src.classify(z.f.Name, fmt.Errorf("content is %d bytes, header says %d: %w",
				z.n, z.f.UncompressedSize64, zip.ErrFormat))
		}
		if z.f.CRC32 != 0 && z.crc != z.f.CRC32 {
			return n, z.src.classify(z.f.Name, zip.ErrChecksum)
		}
		return n, io.EOF
	case err != nil:
		return n, z.src.classify(z.f.Name, err)
	}
	return n, nil
}

type node uint8

const (
	nodeImplicitDir node = iota + 1 // created because an entry's path implies it
	nodeDir
	nodeFile
	nodeSymlink
)

// extractor creates the entries of one archive inside a root, remembering what it created.
type extractor struct {
	ctx      context.Context
	root     *os.Root
	lim      Limits
	count    int
	total    int64
	inflated int64 // decompressed bytes of every zip entry so far
	nodes    map[string]node
	buf      []byte
	inflater io.ReadCloser
}

func newExtractor(ctx context.Context, root *os.Root, lim Limits) (*extractor, error) {
	d, err := root.Open(".")
	if err == nil {
		var names []string
		names, err = d.Readdirnames(1)
		d.Close()
		switch {
		case err == io.EOF:
			err = nil
		case err == nil && len(names) > 0:
			err = fmt.Errorf("%s: destination directory is not empty", root.Name())
		}
	}
	if err != nil {
		return nil, err
	}
	return &extractor{ctx: ctx, root: root, lim: lim, nodes: make(map[string]node), buf: make([]byte, 256<<10)}, nil
}

// addEntry counts one entry (an archive header or an implied directory) against MaxEntries.
func (x *extractor) addEntry(name string) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	x.count++
	if x.count > x.lim.MaxEntries {
		return fmt.Errorf("%s: more than the limit of %d entries: %w", Quote(name), x.lim.MaxEntries, ErrLimitExceeded)
	}
	return nil
}

// checkRatio checks out decompressed bytes made from in compressed bytes against MaxRatio, for the entry name
// or, when name is "", the whole archive.
func (x *extractor) checkRatio(name string, out, in int64) error {
	return checkRatio(name, out, in, x.lim.MaxRatio)
}

func checkRatio(name string, out, in, ratio int64) error {
	if out <= RatioFloor || out/ratio <= in {
		return nil
	}
	what := "archive"
	if name != "" {
		what = Quote(name)
	}
	return fmt.Errorf("%s: %d bytes decompressed from %d, more than the ratio limit of %d: %w", what, out, in, ratio, ErrLimitExceeded)
}

// claim records that name (clean, non-empty) is about to be created as n, after creating its missing parent
// directories. It rejects names below anything but a directory and names already used, except that an
// explicit directory entry may name a directory created implicitly before: then existed is true.
func (x *extractor) claim(name string, n node) (existed bool, err error) {
	for i := range len(name) {
		if name[i] != '/' {
			continue
		}
		dir := name[:i]
		switch x.nodes[dir] {
		case nodeDir, nodeImplicitDir:
			continue
		case nodeSymlink:
			return false, unsafeEntry(name, "path goes through symlink "+Quote(dir))
		case nodeFile:
			return false, unsafeEntry(name, "parent "+Quote(dir)+" is not a directory")
		}
		if err := x.addEntry(dir); err != nil {
			return false, err
		}
		if err := x.mkdir(dir); err != nil {
			return false, err
		}
		x.nodes[dir] = nodeImplicitDir
	}
	switch old := x.nodes[name]; {
	case old == 0:
		x.nodes[name] = n
		return false, nil
	case old == nodeImplicitDir && n == nodeDir:
		x.nodes[name] = nodeDir
		return true, nil
	}
	return false, unsafeEntry(name, "duplicate entry")
}

func (x *extractor) mkdir(name string) error {
	if err := x.root.Mkdir(name, 0o755); err != nil {
		return err
	}
	return x.root.Chmod(name, 0o755) // undo the umask
}

// dir creates the directory name; "" is the destination itself.
func (x *extractor) dir(name string) error {
	if name == "" {
		return nil
	}
	existed, err := x.claim(name, nodeDir)
	if err != nil || existed {
		return err
	}
	return x.mkdir(name)
}

// file creates the regular file name (raw in the archive) with the content of r, which the archive claims is
// declared bytes long.
func (x *extractor) file(raw, name string, exec bool, declared int64, r io.Reader) error {
	if name == "" {
		return unsafeEntry(raw, "regular file without a name")
	}
	if declared > x.lim.MaxFileSize {
		return fmt.Errorf("%s: size %d over the file size limit of %d bytes: %w", Quote(raw), declared, x.lim.MaxFileSize, ErrLimitExceeded)
	}
	if declared > x.lim.MaxTotalSize-x.total {
		return fmt.Errorf("%s: size %d over the total size limit of %d bytes: %w", Quote(raw), declared, x.lim.MaxTotalSize, ErrLimitExceeded)
	}
	if _, err := x.claim(name, nodeFile); err != nil {
		return err
	}
	perm := fs.FileMode(fileMode(exec))
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	allowed := min(x.lim.MaxFileSize, x.lim.MaxTotalSize-x.total)
	n, err := io.CopyBuffer(writerOnly{f}, io.LimitReader(ctxReader{x.ctx, r}, addSat(allowed, 1)), x.buf)
	x.total += n
	switch {
	case err != nil:
	case n > x.lim.MaxFileSize:
		err = fmt.Errorf("%s: more than the file size limit of %d bytes: %w", Quote(raw), x.lim.MaxFileSize, ErrLimitExceeded)
	case n > allowed:
		err = fmt.Errorf("%s: over the total size limit of %d bytes: %w", Quote(raw), x.lim.MaxTotalSize, ErrLimitExceeded)
	default:
		err = f.Chmod(perm) // undo the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// symlink creates the symlink name (raw in the archive) pointing to target.
func (x *extractor) symlink(raw, name, target string) error {
	if name == "" {
		return unsafeEntry(raw, "symlink without a name")
	}
	if err := checkLinkTarget(name, target); err != nil {
		return err
	}
	if _, err := x.claim(name, nodeSymlink); err != nil {
		return err
	}
	return x.root.Symlink(target, name)
}

// hardlink creates name (raw in the archive) as a hard link to target, which must be a regular file extracted
// earlier.
func (x *extractor) hardlink(raw, name, target string) error {
	if name == "" {
		return unsafeEntry(raw, "hard link without a name")
	}
	t, err := cleanName(target)
	if err != nil || t == "" || x.nodes[t] != nodeFile {
		return unsafeEntry(raw, "hard link target "+Quote(target)+" is not a regular file extracted before")
	}
	if _, err := x.claim(name, nodeFile); err != nil {
		return err
	}
	return x.root.Link(t, name)
}

// source wraps the caller's reader to tell its errors apart from errors in the archive's format.
type source struct {
	r    io.Reader
	ra   io.ReaderAt
	size int64 // of ra
	n    int64 // bytes read from r
	err  error // last error other than io.EOF returned by r or ra
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// ReadAt reads from ra, limited to [0, size): offsets come from the archive and may be anything.
func (s *source) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d: %w", off, zip.ErrFormat)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > s.size-off {
		p, short = p[:s.size-off], true
	}
	n, err := s.ra.ReadAt(p, off)
	if err != nil && err != io.EOF {
		s.err = err
	}
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// classify returns err, an error met while reading the archive (for entry name, if not empty), wrapped with
// ErrInvalidArchive unless it already wraps a package sentinel or comes from the caller's reader.
func (s *source) classify(name string, err error) error {
	switch {
	case err == nil, errors.Is(err, ErrInvalidArchive), errors.Is(err, ErrLimitExceeded), errors.Is(err, ErrUnsafeEntry):
		return err
	case s.err != nil && errors.Is(err, s.err):
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if name == "" {
		return fmt.Errorf("archive: %w: %w", ErrInvalidArchive, err)
	}
	return fmt.Errorf("%s: %w: %w", Quote(name), ErrInvalidArchive, err)
}

// dataReader classifies the errors met while reading the content of a tar entry.
type dataReader struct {
	r    io.Reader
	src  *source
	name string
}

func (d dataReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = d.src.classify(d.name, err)
	}
	return n, err
}

// capReader fails with an error wrapping ErrLimitExceeded once more than n bytes are read, or, when compressed
// is set, once the bytes read pass the ratio limit against the compressed bytes read from it.
type capReader struct {
	r          io.Reader
	n          int64
	compressed *source
	ratio      int64
	out        int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, fmt.Errorf("archive: tar stream too long for the limits: %w", ErrLimitExceeded)
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	c.out += int64(n)
	if c.compressed != nil {
		if rerr := checkRatio("", c.out, c.compressed.n, c.ratio); rerr != nil {
			return n, rerr
		}
	}
	return n, err
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// countReader counts the bytes read from r.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
