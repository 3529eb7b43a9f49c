package containers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
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

// File is one entry to write into a container with WriteFiles.
type File struct {
	Name     string // relative to the directory given to WriteFiles
	Content  io.Reader
	Size     int64
	Mode     int64
	UID, GID int
	IsDir    bool
	// Link makes the entry a hard link to the file Link (relative to the directory): the
	// Engine replaces whatever is at Name by it in one step. That is how a file written
	// beside the live one is put in its place.
	Link string
}

// WriteFiles writes files into dir of the container (running or not) in one archive,
// replacing existing ones. Sizes must be exact.
func (c *Container) WriteFiles(ctx context.Context, dir string, files ...File) error {
	i := 0
	return c.WriteStream(ctx, dir, func() (*File, error) {
		if i == len(files) {
			return nil, nil
		}
		i++
		return &files[i-1], nil
	})
}

// WriteStream writes the entries next returns, until it returns nil, into dir of the
// container in one archive. An error from next (or from reading an entry's content) ends
// the archive there: the Engine has extracted the entries before it, and none after.
func (c *Container) WriteStream(ctx context.Context, dir string, next func() (*File, error)) error {
	pr, pw := io.Pipe()
	now := time.Now()
	var produceErr error
	done := make(chan struct{})
	fail := func(err error) {
		produceErr = err
		pw.CloseWithError(err)
	}
	go func() {
		defer close(done)
		tw := tar.NewWriter(pw)
		for {
			f, err := next()
			if err != nil {
				fail(err)
				return
			}
			if f == nil {
				break
			}
			hdr := &tar.Header{Name: f.Name, Size: f.Size, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Typeflag: tar.TypeReg, ModTime: now, Format: tar.FormatPAX}
			switch {
			case f.IsDir:
				hdr.Typeflag, hdr.Size, hdr.Name = tar.TypeDir, 0, strings.TrimSuffix(f.Name, "/")+"/"
			case f.Link != "":
				hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeLink, 0, f.Link
			}
			if err := tw.WriteHeader(hdr); err != nil {
				fail(err)
				return
			}
			if hdr.Typeflag == tar.TypeReg && f.Size > 0 {
				n, err := io.Copy(tw, io.LimitReader(f.Content, f.Size))
				if err == nil && n != f.Size {
					err = fmt.Errorf("%s: got %d bytes, expected %d: %w", path.Join(dir, f.Name), n, f.Size, io.ErrUnexpectedEOF)
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	err := c.CopyTo(ctx, dir, pr)
	pr.CloseWithError(errors.New("copy finished"))
	<-done
	if produceErr != nil {
		// What cut the archive short says more than the Engine's view of it.
		return produceErr
	}
	return err
}

// RemoveLeftover deletes a file the restore left in the container, once it runs again:
// with rm if the image has one (best effort: a container without a shell keeps it).
func (c *Container) RemoveLeftover(ctx context.Context, files ...string) {
	if !c.Running || len(files) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_ = c.Exec(ctx, ExecSpec{Cmd: append([]string{"rm", "-f", "--"}, files...)})
}

// RemoveTemp deletes a temporary file the backup created in the running container, with
// `rm -f`, also after ctx was cancelled: a cleanup must not be skipped by the failure it
// cleans up after.
func (c *Container) RemoveTemp(ctx context.Context, file string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return c.Exec(ctx, ExecSpec{Cmd: []string{"rm", "-f", file}})
}

// ExecUser returns the numeric user and group that commands run as in the container (its
// image's USER), reading /etc/passwd and /etc/group through the archive API, as the Engine
// does: a name is looked up, a number's primary group comes from /etc/passwd (else 0).
func (c *Container) ExecUser(ctx context.Context) (uid, gid int, err error) {
	user, group, _ := strings.Cut(c.User, ":")
	if user == "" {
		user = "0"
	}
	// entries returns the colon-separated lines of a file in the container.
	entries := func(file string) ([][]string, error) {
		rc, _, err := c.OpenFile(ctx, file)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		if err != nil {
			return nil, err
		}
		var out [][]string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 3 {
				out = append(out, f)
			}
		}
		return out, nil
	}
	passwd, perr := entries("/etc/passwd")
	gid = -1
	if n, err := strconv.Atoi(user); err == nil {
		uid = n
		for _, f := range passwd {
			if len(f) >= 4 && f[2] == user {
				gid, _ = strconv.Atoi(f[3])
			}
		}
	} else {
		found := false
		for _, f := range passwd {
			if len(f) >= 4 && f[0] == user {
				uid, _ = strconv.Atoi(f[2])
				gid, _ = strconv.Atoi(f[3])
				found = true
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("the user %q of %s is not in its /etc/passwd (%v)", user, c, perr)
		}
	}
	if group != "" {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			groups, err := entries("/etc/group")
			found := false
			for _, f := range groups {
				if f[0] == group {
					gid, _ = strconv.Atoi(f[2])
					found = true
				}
			}
			if !found {
				return 0, 0, fmt.Errorf("the group %q of %s is not in its /etc/group (%v)", group, c, err)
			}
		}
	}
	return uid, max(gid, 0), nil
}
