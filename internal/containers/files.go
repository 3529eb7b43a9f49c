package containers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// maxSecretSize bounds a secret read from a file in the container.
const maxSecretSize = 64 << 10

// Secret returns the value of the environment variable key, or the content of the file
// named by key_FILE (the Docker secrets convention), read through the archive API so that
// it never appears in a command line. found is false when neither is set.
func (c *Container) Secret(ctx context.Context, key string) (value string, found bool, err error) {
	if v, ok := c.Getenv(key); ok && v != "" {
		return v, true, nil
	}
	file, ok := c.Getenv(key + "_FILE")
	if !ok || file == "" {
		return "", false, nil
	}
	rc, _, err := c.OpenFile(ctx, file)
	if err != nil {
		return "", false, fmt.Errorf("reading %s_FILE (%s): %w", key, file, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSecretSize))
	if err != nil {
		return "", false, fmt.Errorf("reading %s_FILE (%s): %w", key, file, err)
	}
	return strings.TrimRight(string(b), "\r\n"), true, nil
}

// OpenFile streams the content of one regular file from the container (running or not) and
// returns its tar header (size, mode, owner).
func (c *Container) OpenFile(ctx context.Context, file string) (io.ReadCloser, *tar.Header, error) {
	rc, err := c.CopyFrom(ctx, file)
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("reading %s from %s: %w", file, c, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		rc.Close()
		return nil, nil, fmt.Errorf("%s in %s is not a regular file", file, c)
	}
	return struct {
		io.Reader
		io.Closer
	}{tr, rc}, hdr, nil
}

// File is one file to write into a container with WriteFiles.
type File struct {
	Name     string // relative to the directory given to WriteFiles
	Content  io.Reader
	Size     int64
	Mode     int64
	UID, GID int
	IsDir    bool
}

// WriteFiles writes files into dir of the container (running or not) in one archive,
// replacing existing ones. Sizes must be exact.
func (c *Container) WriteFiles(ctx context.Context, dir string, files ...File) error {
	pr, pw := io.Pipe()
	now := time.Now()
	go func() {
		tw := tar.NewWriter(pw)
		for _, f := range files {
			hdr := &tar.Header{Name: f.Name, Size: f.Size, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Typeflag: tar.TypeReg, ModTime: now, Format: tar.FormatPAX}
			if f.IsDir {
				hdr.Typeflag, hdr.Size, hdr.Name = tar.TypeDir, 0, strings.TrimSuffix(f.Name, "/")+"/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if !f.IsDir && f.Size > 0 {
				n, err := io.Copy(tw, io.LimitReader(f.Content, f.Size))
				if err == nil && n != f.Size {
					err = fmt.Errorf("%s: got %d bytes, expected %d: %w", path.Join(dir, f.Name), n, f.Size, io.ErrUnexpectedEOF)
				}
				if err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	err := c.CopyTo(ctx, dir, pr)
	pr.CloseWithError(errors.New("copy finished"))
	return err
}

// RemoveTemp deletes a temporary file the backup created in the running container, with
// `rm -f`, also after ctx was cancelled: a cleanup must not be skipped by the failure it
// cleans up after.
func (c *Container) RemoveTemp(ctx context.Context, file string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return c.Exec(ctx, ExecSpec{Cmd: []string{"rm", "-f", file}})
}
