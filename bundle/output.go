package bundle

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// output is the directory [Pull] writes into. Every change goes through root; what Pull created is
// undone on failure, and nothing else is touched.
type output struct {
	dir      string
	created  []string // directories made by openOutput, deepest first
	root     *os.Root
	name     string        // of the staging directory inside root
	staging  *os.Root      // root/name
	replaced []replacedDir // empty role directories removed by commit
	moved    []string      // roles commit moved from staging into root
	locked   bool          // commit wrote the lock file
}

// replacedDir is an empty directory commit removed, to be made again on failure.
type replacedDir struct {
	name string
	mode fs.FileMode
}

// openOutput opens dir, creating it (and its missing parents) if needed.
func openOutput(dir string) (*output, error) {
	o := &output{dir: dir}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for p := abs; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			break
		}
		o.created = append(o.created, p)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s: %w: it is a file, not a directory; pull into another directory", dir, ErrOutputExists)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	if o.root, err = os.OpenRoot(dir); err != nil {
		o.removeCreated()
		return nil, fmt.Errorf("output directory: %w", err)
	}
	return o, nil
}

// checkFree fails, naming the path, when something is where a role directory or the lock file goes:
// anything but an empty directory for a role, anything at all for the lock file.
func (o *output) checkFree(roles []string) error {
	for _, name := range append(roles, LockFileName) {
		fi, err := o.root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		path := filepath.Join(o.dir, name)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: %w: it is a symlink, which ferry neither writes through nor replaces; pull into another directory or remove it", path, ErrOutputExists)
		case name == LockFileName:
			return fmt.Errorf("%s: %w (from an earlier pull?); pull into another directory or remove it", path, ErrOutputExists)
		case !fi.IsDir():
			return fmt.Errorf("%s: %w: it is a file, where the %s layer goes; pull into another directory or remove it", path, ErrOutputExists, name)
		}
		if empty, err := o.isEmptyDir(name); err != nil {
			return err
		} else if !empty {
			return fmt.Errorf("%s: %w and is not empty; pull into another directory or remove it", path, ErrOutputExists)
		}
	}
	return nil
}

func (o *output) isEmptyDir(name string) (bool, error) {
	d, err := o.root.Open(name)
	if err != nil {
		return false, err
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// stage creates the staging directory, a new name inside dir.
func (o *output) stage() error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	o.name = ".ferry-pull-" + hex.EncodeToString(b[:])
	if err := o.root.Mkdir(o.name, 0o700); err != nil {
		return fmt.Errorf("staging directory: %w", err)
	}
	var err error
	if o.staging, err = o.root.OpenRoot(o.name); err != nil {
		return fmt.Errorf("staging directory: %w", err)
	}
	return nil
}

// commit moves the roles from staging into dir, then writes the lock file. A rename never replaces a
// file, a symlink or a non-empty directory, and the lock file is created exclusively; an empty role
// directory checkFree accepted is removed first. On error, fail undoes what commit did.
func (o *output) commit(roles []string, lock []byte) error {
	for _, name := range roles {
		if fi, err := o.root.Lstat(name); err == nil && fi.IsDir() {
			if err := o.root.Remove(name); err != nil { // only an empty directory can be removed
				return fmt.Errorf("%s: %w", filepath.Join(o.dir, name), err)
			}
			o.replaced = append(o.replaced, replacedDir{name, fi.Mode().Perm()})
		}
		if err := o.root.Rename(filepath.Join(o.name, name), name); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(o.dir, name), err)
		}
		o.moved = append(o.moved, name)
	}
	f, err := o.root.OpenFile(LockFileName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(o.dir, LockFileName), err)
	}
	o.locked = true
	_, err = f.Write(lock)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fail undoes what the pull did in dir and returns err.
func (o *output) fail(err error) error {
	if o.locked {
		_ = o.root.Remove(LockFileName)
	}
	for i := len(o.moved) - 1; i >= 0; i-- {
		_ = o.root.Rename(o.moved[i], filepath.Join(o.name, o.moved[i]))
	}
	for _, d := range o.replaced {
		if o.root.Mkdir(d.name, d.mode) == nil {
			_ = o.root.Chmod(d.name, d.mode) // undo the umask
		}
	}
	o.moved, o.replaced, o.locked = nil, nil, false
	o.removeStaging()
	o.root.Close()
	o.root = nil
	o.removeCreated()
	return err
}

func (o *output) removeStaging() {
	if o.staging != nil {
		o.staging.Close()
		o.staging = nil
	}
	if o.name != "" && o.root != nil {
		_ = o.root.RemoveAll(o.name)
		o.name = ""
	}
}

// removeCreated removes the directories openOutput created, if they are empty.
func (o *output) removeCreated() {
	for _, p := range o.created {
		if os.Remove(p) != nil {
			return
		}
	}
	o.created = nil
}

// close removes the staging directory and releases dir.
func (o *output) close() {
	if o.root == nil {
		return
	}
	o.removeStaging()
	o.root.Close()
	o.root = nil
}
