package archive

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Collect walks root and returns its regular files, directories and symlinks sorted by Path, skipping nothing
// except that it rejects (with an error naming the path) device files, sockets, named pipes, and symlinks that are
// absolute or point outside root. Directories are included as entries (Mode has fs.ModeDir).
//
// If root itself is a symlink it is followed. Symlinks below root are not followed; their targets must satisfy
// the package's symlink rule (relative, ".." only as leading components, not above root). Paths that the
// extractors would refuse (containing a backslash, or a first component like "C:") are rejected too. Rejections
// wrap ErrUnsafeEntry. The Open functions of the returned files open the file inside root (via os.OpenInRoot)
// and fail if it is no longer a regular file.
func Collect(root string) ([]File, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", root)
	}
	var files []File
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == real {
			return nil
		}
		rel, err := filepath.Rel(real, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if clean, err := cleanName(rel); err != nil {
			return err
		} else if clean != rel {
			return unsafeEntry(rel, "path is not clean and relative")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := info.Mode()
		switch m.Type() {
		case 0:
			files = append(files, File{Path: rel, Mode: m, Size: info.Size(), Open: opener(real, rel)})
		case fs.ModeDir:
			files = append(files, File{Path: rel, Mode: m})
		case fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.Separator != '/' {
				target = strings.ReplaceAll(target, string(filepath.Separator), "/")
			}
			if err := checkLinkTarget(rel, target); err != nil {
				return err
			}
			files = append(files, File{Path: rel, Mode: m, Linkname: target})
		default:
			return unsafeEntry(rel, "unsupported file type "+typeName(m))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// opener returns a function opening the regular file rel inside root.
func opener(root, rel string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f, err := os.OpenInRoot(root, filepath.FromSlash(rel))
		if err != nil {
			return nil, err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if !info.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%s: no longer a regular file", rel)
		}
		return f, nil
	}
}
