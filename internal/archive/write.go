package archive

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// gzipOSUnknown is the gzip header OS byte written by WriteTarGz ("unknown"), so the output does not depend on
// the host.
const gzipOSUnknown = 255

// WriteTarGz writes files as a reproducible gzip-compressed tar: entries sorted by Path (directories included,
// parents before children, each directory emitted once even if only implied by a file path), every entry with
// ModTime = opts.ModTime (UTC), uid/gid 0, empty uname/gname, modes normalized to 0644 (0755 when any executable bit
// is set, 0755 for directories, 0777 for symlinks); gzip header with empty Name, zero ModTime, OS byte 255
// ("unknown") and compression level gzip.DefaultCompression. The same input gives byte-identical output on any
// machine.
//
// Each header uses the first of the USTAR, GNU and PAX formats able to encode it: USTAR unless a path or link
// target is too long or not ASCII, then GNU (long names as ././@LongLink entries, non-ASCII names as raw UTF-8);
// PAX is never needed for the entries WriteTarGz produces, so there are no PAX records at all. Directory names
// end in "/". The content of each regular file must be exactly File.Size bytes long, or WriteTarGz fails. The
// output bytes also depend on the compress/flate implementation of the Go toolchain.
func WriteTarGz(w io.Writer, files []File, opts Options) error {
	mt, err := opts.modTime()
	if err != nil {
		return err
	}
	entries, err := plan(files)
	if err != nil {
		return err
	}
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	gz.Header = gzip.Header{OS: gzipOSUnknown}
	tw := tar.NewWriter(gz)
	buf := make([]byte, copyBufSize)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.path, ModTime: mt}
		switch e.kind {
		case kindDir:
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, e.path+"/", 0o755
		case kindSymlink:
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, 0o777
		case kindFile:
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, e.size, fileMode(e.exec)
		}
		if err := writeTarHeader(tw, hdr); err != nil {
			return fmt.Errorf("%q: %w", e.path, err)
		}
		if e.kind == kindFile {
			if err := writeContent(tw, e, buf); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// tarFormats are the formats tried for each header, in order.
var tarFormats = []tar.Format{tar.FormatUSTAR, tar.FormatGNU, tar.FormatPAX}

// writeTarHeader writes hdr in the first of tarFormats able to encode it. tar.Writer.WriteHeader returns a
// non-fatal error, without writing anything, when the format cannot encode the header; write errors are sticky.
func writeTarHeader(tw *tar.Writer, hdr *tar.Header) error {
	var err error
	for _, f := range tarFormats {
		hdr.Format = f
		if err = tw.WriteHeader(hdr); err == nil {
			return nil
		}
	}
	return err
}

// fileMode returns the normalized permission bits of a regular file.
func fileMode(exec bool) int64 {
	if exec {
		return 0o755
	}
	return 0o644
}

// writeContent copies the content of the regular file e to dst.
func writeContent(dst io.Writer, e entry, buf []byte) error {
	if e.open == nil {
		return nil // size is 0, checked by plan
	}
	rc, err := e.open()
	if err != nil {
		return fmt.Errorf("%q: %w", e.path, err)
	}
	err = copyExact(dst, rc, e.size, buf)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%q: %w", e.path, err)
	}
	return nil
}

// errSizeChanged reports that a file's content is not File.Size bytes long.
var errSizeChanged = errors.New("content size differs from File.Size")

// copyExact copies exactly n bytes from src to dst using buf and checks that src has no more data.
func copyExact(dst io.Writer, src io.Reader, n int64, buf []byte) error {
	m, err := io.CopyBuffer(writerOnly{dst}, io.LimitReader(readerOnly{src}, n), buf)
	if err != nil {
		return err
	}
	if m != n {
		return fmt.Errorf("read %d bytes, want %d: %w", m, n, errSizeChanged)
	}
	return checkEOF(src, n)
}

// checkEOF checks that src, from which n bytes were read, has no more data.
func checkEOF(src io.Reader, n int64) error {
	var one [1]byte
	k, err := io.ReadFull(src, one[:])
	if k > 0 {
		return fmt.Errorf("more than %d bytes: %w", n, errSizeChanged)
	}
	if err != io.EOF {
		return err
	}
	return nil
}

const (
	// sampleSize is the length of the prefix of a file compressed to choose between Store and Deflate.
	sampleSize = copyBufSize
	// sampleLevel is the flate level used to compress the sample.
	sampleLevel = flate.BestSpeed
	// zipLevel is the flate level of deflated zip entries.
	zipLevel = flate.DefaultCompression
)

// WriteZip writes files as a reproducible zip: entries sorted by Path (directories included as "dir/" entries,
// parents before children, each directory emitted once even if only implied by a file path), every entry with
// the modification time opts.ModTime, modes normalized as for WriteTarGz and set with FileHeader.SetMode (Unix
// creator, fixed creator version), symlinks as entries with fs.ModeSymlink and the target as content.
//
// archive/zip adds an extended-timestamp extra field whenever FileHeader.Modified is set, so WriteZip leaves
// Modified zero and writes the time only in the MS-DOS ModifiedDate/ModifiedTime fields (2-second resolution,
// no time zone), which archive/zip readers report back as Modified in UTC. Entries carry no extra fields at all
// unless a size needs zip64.
//
// Each regular file is compressed with Deflate at flate.DefaultCompression unless it is incompressible: its first
// 1 MiB is compressed with flate.BestSpeed and the file is stored (zip.Store) when that sample does not shrink
// below 90% of its size. Empty files, directories and symlinks are stored. Files are streamed, never loaded
// whole into memory, through one reused 1 MiB buffer. The content of each regular file must be exactly File.Size
// bytes long, or WriteZip fails.
func WriteZip(w io.Writer, files []File, opts Options) error {
	mt, err := opts.modTime()
	if err != nil {
		return err
	}
	entries, err := plan(files)
	if err != nil {
		return err
	}
	date, clock := msDosTime(mt)
	zw := zip.NewWriter(w)
	var deflater *flate.Writer
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		if deflater == nil {
			var err error
			deflater, err = flate.NewWriter(out, zipLevel)
			return deflater, err
		}
		deflater.Reset(out)
		return deflater, nil
	})
	var sampler *flate.Writer
	buf := make([]byte, copyBufSize)
	for _, e := range entries {
		//lint:ignore SA1019 deliberate: Modified would add an extended-timestamp extra field (see WriteZip)
		fh := &zip.FileHeader{Name: e.path, Method: zip.Store, ModifiedDate: date, ModifiedTime: clock}
		switch e.kind {
		case kindDir:
			fh.Name = e.path + "/"
			fh.SetMode(fs.ModeDir | 0o755)
			if _, err := zw.CreateHeader(fh); err != nil {
				return fmt.Errorf("%q: %w", e.path, err)
			}
		case kindSymlink:
			fh.SetMode(fs.ModeSymlink | 0o777)
			fw, err := zw.CreateHeader(fh)
			if err == nil {
				_, err = io.WriteString(fw, e.link)
			}
			if err != nil {
				return fmt.Errorf("%q: %w", e.path, err)
			}
		case kindFile:
			fh.SetMode(fs.FileMode(fileMode(e.exec)))
			if sampler == nil {
				if sampler, err = flate.NewWriter(io.Discard, sampleLevel); err != nil {
					return err
				}
			}
			if err := writeZipFile(zw, fh, e, buf, sampler); err != nil {
				return err
			}
		}
	}
	return zw.Close()
}

// writeZipFile writes the regular file e with header fh, choosing the compression method from a sample.
func writeZipFile(zw *zip.Writer, fh *zip.FileHeader, e entry, buf []byte, sampler *flate.Writer) error {
	if e.size == 0 || e.open == nil {
		_, err := zw.CreateHeader(fh)
		return err
	}
	rc, err := e.open()
	if err != nil {
		return fmt.Errorf("%q: %w", e.path, err)
	}
	err = writeZipContent(zw, fh, rc, e.size, buf, sampler)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%q: %w", e.path, err)
	}
	return nil
}

func writeZipContent(zw *zip.Writer, fh *zip.FileHeader, r io.Reader, size int64, buf []byte, sampler *flate.Writer) error {
	sample := buf[:min(size, sampleSize)]
	if n, err := io.ReadFull(r, sample); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return fmt.Errorf("read %d bytes, want %d: %w", n, size, errSizeChanged)
		}
		return err
	}
	if compressible(sample, sampler) {
		fh.Method = zip.Deflate
	}
	fw, err := zw.CreateHeader(fh)
	if err != nil {
		return err
	}
	if _, err := fw.Write(sample); err != nil {
		return err
	}
	rest := size - int64(len(sample))
	if rest == 0 {
		return checkEOF(r, size)
	}
	return copyExact(fw, r, rest, buf)
}

// compressible reports whether sample shrinks below 90% of its size when compressed with sampler.
func compressible(sample []byte, sampler *flate.Writer) bool {
	var cw countWriter
	sampler.Reset(&cw)
	if _, err := sampler.Write(sample); err != nil {
		return false // cannot happen: countWriter never fails
	}
	if err := sampler.Close(); err != nil {
		return false
	}
	return cw.n*10 < int64(len(sample))*9
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// msDosTime converts t (UTC, within the MS-DOS range) to MS-DOS date and time fields.
func msDosTime(t time.Time) (date, clock uint16) {
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}
