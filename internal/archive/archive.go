// Package archive writes reproducible tar+gzip and zip archives of a file set and extracts untrusted archives safely.
//
// Writing: [WriteTarGz] and [WriteZip] turn a list of [File] values (usually from [Collect]) into archives whose
// bytes depend only on the paths, contents, executable bits, symlink targets and [Options]: never on the order of
// the input, file owners, permissions other than the executable bit, timestamps, the host or the time of day.
//
// Extracting: [ExtractTar], [ExtractTarGz] and [ExtractZip] extract into an empty directory and reject anything
// that could write outside it (absolute paths, ".." components, writes through symlinks, escaping symlinks and hard
// links, special files, duplicate entries) with an error wrapping [ErrUnsafeEntry], and archives that exceed
// [Limits] with an error wrapping [ErrLimitExceeded]. Malformed archives give an error wrapping [ErrInvalidArchive].
//
// Symlink targets, both when writing and when extracting, must be relative and may contain ".." only as leading
// components ("../../lib/x" is accepted, "x/../y" is not), and the leading ".." components must not climb above
// the root. Together with the rule that no entry is written below a symlink, this guarantees that every symlink
// resolves inside the root whatever the other entries are.
//
// Hard links (tar only) are extracted as hard links when their target is a regular file extracted earlier from
// the same archive; any other hard link is rejected. The writers never produce hard links.
package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// File is one entry to archive. Path is slash-separated, relative, clean (no "..", no leading "/").
type File struct {
	Path     string
	Mode     fs.FileMode                   // only the executable bit and the type (regular, dir, symlink) matter
	Size     int64                         // size of regular file content
	Linkname string                        // symlink target (relative, must stay inside the root), when Mode&fs.ModeSymlink != 0
	Open     func() (io.ReadCloser, error) // content of a regular file
}

// Options controls archive writing.
type Options struct {
	// ModTime is the modification time written for every entry. Zero means 1980-01-01T00:00:00Z
	// (zip's minimum); tar also uses this value so both are the same. It is converted to UTC and truncated to
	// an even number of seconds (zip's resolution), and must lie between 1980-01-01 and 2107-12-31.
	ModTime time.Time
}

// Limits bounds extraction. Zero fields mean the defaults: MaxEntries 100000, MaxFileSize 1 GiB, MaxTotalSize 4 GiB,
// MaxRatio 100. Negative fields also mean the defaults.
//
// MaxEntries counts every header of the archive and every directory created only because an entry's path
// implies it. MaxFileSize and MaxTotalSize count the bytes actually written to regular files.
//
// MaxRatio bounds how much the archive expands: once more than [RatioFloor] bytes have come out of a compressed
// stream, they may be at most MaxRatio times the compressed bytes read so far. It is checked for the whole stream
// of a tar+gzip archive, and for each zip entry and the whole zip (against the archive's size), so a small blob
// cannot fill a disk however high the size limits are set. Real releases compress 3-20 times; zeros compress
// about 1000 times.
type Limits struct {
	MaxEntries   int
	MaxFileSize  int64
	MaxTotalSize int64
	MaxRatio     int64
}

// DefaultMaxRatio is the default of [Limits].MaxRatio.
const DefaultMaxRatio = 100

// RatioFloor is the number of decompressed bytes below which [Limits].MaxRatio is not checked: small, highly
// compressible content (a file of blank lines, a short archive) is harmless.
const RatioFloor = 8 << 20

// ErrUnsafeEntry is returned (wrapped, with the entry name) for absolute paths, ".." traversal, links that leave
// the destination, device files / fifos / other special types, duplicate or conflicting entries.
var ErrUnsafeEntry = errors.New("unsafe archive entry")

// ErrLimitExceeded is returned (wrapped) when an archive exceeds Limits (entry count, a file's size, total size);
// sizes are enforced on the bytes actually written, not on the sizes the headers claim.
var ErrLimitExceeded = errors.New("archive limit exceeded")

// ErrInvalidArchive is returned (wrapped, together with the underlying error such as tar.ErrHeader, zip.ErrFormat,
// zip.ErrChecksum, gzip.ErrChecksum or io.ErrUnexpectedEOF) when an archive is malformed or corrupt, including a zip
// entry whose content does not match its declared size or CRC-32. Errors returned by the caller's reader are
// passed through unchanged instead.
var ErrInvalidArchive = errors.New("invalid archive")

const (
	defaultMaxEntries   = 100000
	defaultMaxFileSize  = 1 << 30
	defaultMaxTotalSize = 4 << 30

	maxNameLen      = 4095 // PATH_MAX - 1 on Linux
	maxComponentLen = 255  // NAME_MAX on Linux
)

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = defaultMaxEntries
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = defaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = defaultMaxTotalSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

var (
	minModTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	maxModTime = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
)

// modTime returns the normalized modification time for every entry.
func (o Options) modTime() (time.Time, error) {
	if o.ModTime.IsZero() {
		return minModTime, nil
	}
	t := o.ModTime.UTC().Truncate(2 * time.Second)
	if t.Before(minModTime) || t.After(maxModTime) {
		return time.Time{}, fmt.Errorf("options: mod time %s is outside the range 1980-01-01..2107-12-31", o.ModTime)
	}
	return t, nil
}

// unsafeEntry returns an error wrapping ErrUnsafeEntry for the named entry.
func unsafeEntry(name, reason string) error {
	return fmt.Errorf("%s: %s: %w", Quote(name), reason, ErrUnsafeEntry)
}

// maxQuoted is the most bytes of a name that [Quote] shows.
const maxQuoted = 100

// Quote returns s quoted for an error message, cut to its first 100 bytes with the number of bytes left out,
// so that a hostile archive or config cannot make an error as long as its names.
func Quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", strconv.Quote(s[:cut]), len(s)-cut)
}

// hasVolume reports whether name starts with a Windows drive letter such as "C:".
func hasVolume(name string) bool {
	if len(name) < 2 || name[1] != ':' {
		return false
	}
	c := name[0] | 0x20
	return 'a' <= c && c <= 'z'
}

// cleanName validates an entry name and returns it in canonical form: components separated by a single "/",
// without "." components or leading, trailing or repeated slashes. The result is "" for names denoting the root
// itself ("", ".", "./"). Absolute names, Windows volume names, backslashes, NUL bytes, ".." components and
// over-long names give an error wrapping ErrUnsafeEntry.
func cleanName(name string) (string, error) {
	switch {
	case strings.ContainsRune(name, '\\'):
		return "", unsafeEntry(name, "backslash in path")
	case strings.ContainsRune(name, 0):
		return "", unsafeEntry(name, "NUL byte in path")
	case strings.HasPrefix(name, "/"):
		return "", unsafeEntry(name, "absolute path")
	case hasVolume(name):
		return "", unsafeEntry(name, "windows volume name")
	}
	var b strings.Builder
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			return "", unsafeEntry(name, "path traversal (..)")
		}
		if len(part) > maxComponentLen {
			return "", unsafeEntry(name, "path component too long")
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(part)
	}
	if b.Len() > maxNameLen {
		return "", unsafeEntry(name, "path too long")
	}
	return b.String(), nil
}

// checkLinkTarget checks the target of a symlink named name (a clean, non-empty name): it must be relative, may
// contain ".." only as leading components, and those must not climb above the root.
func checkLinkTarget(name, target string) error {
	switch {
	case target == "":
		return unsafeEntry(name, "empty symlink target")
	case strings.ContainsRune(target, '\\'):
		return unsafeEntry(name, "backslash in symlink target "+Quote(target))
	case strings.ContainsRune(target, 0):
		return unsafeEntry(name, "NUL byte in symlink target "+Quote(target))
	case strings.HasPrefix(target, "/") || hasVolume(target):
		return unsafeEntry(name, "absolute symlink target "+Quote(target))
	case len(target) > maxNameLen:
		return unsafeEntry(name, "symlink target too long")
	}
	up, descended := 0, false
	for part := range strings.SplitSeq(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if descended {
				return unsafeEntry(name, "symlink target "+Quote(target)+" has .. after a name")
			}
			up++
		default:
			if len(part) > maxComponentLen {
				return unsafeEntry(name, "symlink target component too long")
			}
			descended = true
		}
	}
	if up > strings.Count(name, "/") {
		return unsafeEntry(name, "symlink target "+Quote(target)+" leaves the root")
	}
	return nil
}

type kind uint8

const (
	kindFile kind = iota + 1
	kindDir
	kindSymlink
)

// entry is a validated File ready to be written.
type entry struct {
	path    string
	kind    kind
	exec    bool
	size    int64
	link    string
	open    func() (io.ReadCloser, error)
	implied bool // directory implied by a descendant's path
}

// plan validates files and returns the entries to write: sorted by path, with every directory implied by a path
// added once, so that parents come before their children.
func plan(files []File) ([]entry, error) {
	entries := make([]entry, 0, len(files))
	index := make(map[string]int, len(files))
	for _, f := range files {
		p, err := cleanName(f.Path)
		if err != nil {
			return nil, err
		}
		if p == "" || p != f.Path {
			return nil, unsafeEntry(f.Path, "path is not clean and relative")
		}
		e := entry{path: p}
		switch t := f.Mode.Type(); t {
		case 0:
			if f.Size < 0 {
				return nil, fmt.Errorf("%s: negative size %d", Quote(p), f.Size)
			}
			if f.Open == nil && f.Size > 0 {
				return nil, fmt.Errorf("%s: regular file without Open", Quote(p))
			}
			e.kind, e.exec, e.size, e.open = kindFile, f.Mode&0o111 != 0, f.Size, f.Open
		case fs.ModeDir:
			e.kind = kindDir
		case fs.ModeSymlink:
			if err := checkLinkTarget(p, f.Linkname); err != nil {
				return nil, err
			}
			e.kind, e.link = kindSymlink, f.Linkname
		default:
			return nil, unsafeEntry(p, "unsupported file type "+typeName(f.Mode))
		}
		if _, dup := index[p]; dup {
			return nil, unsafeEntry(p, "duplicate path")
		}
		index[p] = len(entries)
		entries = append(entries, e)
	}
	for _, e := range entries { // ranges over the explicit entries only
		for i := range len(e.path) {
			if e.path[i] != '/' {
				continue
			}
			dir := e.path[:i]
			if j, ok := index[dir]; ok {
				if entries[j].kind != kindDir {
					return nil, unsafeEntry(e.path, "parent "+Quote(dir)+" is not a directory")
				}
				continue
			}
			index[dir] = len(entries)
			entries = append(entries, entry{path: dir, kind: kindDir, implied: true})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	return entries, nil
}

// typeName describes the type of a non-regular, non-directory, non-symlink file mode.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return m.Type().String()
}

// addSat returns a+b, saturating at math.MaxInt64 (both are non-negative).
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// copyBufSize is the size of the buffers used to sample and copy file contents.
const copyBufSize = 1 << 20

// readerOnly hides any WriterTo method so that io.CopyBuffer uses the caller's buffer.
type readerOnly struct{ io.Reader }

// writerOnly hides any ReaderFrom method so that io.CopyBuffer uses the caller's buffer.
type writerOnly struct{ io.Writer }
