//go:build unix

package archive

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// specialFileCases returns Collect cases creating files that no archive may contain.
func specialFileCases() []struct {
	name  string
	setup func(t *testing.T, dir string)
} {
	return []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"named pipe", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"character device", func(t *testing.T, dir string) {
			if os.Getuid() != 0 {
				t.Skip("creating a device needs root")
			}
			if err := syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
				t.Skipf("cannot create a device: %v", err)
			}
		}},
		{"socket", func(t *testing.T, dir string) {
			l, err := net.Listen("unix", filepath.Join(dir, "sock"))
			if err != nil {
				t.Skipf("cannot create a unix socket: %v", err)
			}
			t.Cleanup(func() { l.Close() })
		}},
	}
}

// nlink returns the number of hard links of a file.
func nlink(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
