//go:build !unix

package archive

import (
	"io/fs"
	"testing"
)

func specialFileCases() []struct {
	name  string
	setup func(t *testing.T, dir string)
} {
	return nil
}

func nlink(info fs.FileInfo) uint64 { return 1 }
