package sftp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	sftplib "github.com/pkg/sftp"

	"github.com/docker-backup/docker-backup/internal/target"
)

// ErrLink is wrapped when a path below the target's directory is a symbolic link: the server
// resolves a path's links itself, so a link placed there (by whoever else can write in the
// directory) would lead a Put, Get, Delete or listing to files elsewhere on the server.
var ErrLink = errors.New("a symbolic link in the target's directory: refused, as it could lead outside it")

// openTimeout bounds the opening of a file: a server stuck in it (a named pipe swapped in for
// a backup) must not hang a restore and the connection with it.
const openTimeout = time.Minute

// checkDirs checks that the key directory dir ("" or ".": the target's own) and each one
// above it, up to the target's directory, is a directory and not a link. With create, the
// missing ones are made (0700 where the server lets the mode be set); without, a missing one
// ends the check with false. The target's directory itself may be a link: the user named it.
// OpenSSH's SFTP has no openat: a link swapped in after the check is not seen (docs say so).
func (s *Target) checkDirs(c *sftplib.Client, dir string, create bool) (bool, error) {
	if create {
		if err := s.makeRoot(c); err != nil {
			return false, err
		}
	}
	if dir == "" || dir == "." {
		return true, nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		info, err := c.Lstat(s.remote(cur))
		switch {
		case errors.Is(err, os.ErrNotExist) && !create:
			return false, nil
		case errors.Is(err, os.ErrNotExist):
			if err := s.mkdir(c, cur); err != nil {
				return false, err
			}
			continue
		case err != nil:
			return false, err
		case info.Mode()&os.ModeSymlink != 0:
			return false, fmt.Errorf("%s: %w", s.where(cur), ErrLink)
		case !info.IsDir():
			return false, fmt.Errorf("%s is not a directory but %s", s.where(cur), target.FileKind(info.Mode()))
		}
	}
	return true, nil
}

// makeRoot makes the target's directory and its parents where they are missing (0700).
func (s *Target) makeRoot(c *sftplib.Client) error {
	root := s.remote("")
	if root == "." || root == "/" {
		return nil
	}
	info, err := c.Stat(root)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s on the server is not a directory", root)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := c.MkdirAll(root); err != nil {
		return fmt.Errorf("creating the target's directory %s: %w", root, err)
	}
	_ = c.Chmod(root, 0o700)
	return nil
}

// mkdir makes the key directory dir, 0700 where the server lets the mode be set; one made
// meanwhile by another Put is fine.
func (s *Target) mkdir(c *sftplib.Client, dir string) error {
	if err := c.Mkdir(s.remote(dir)); err != nil {
		if info, serr := c.Lstat(s.remote(dir)); serr == nil && info.IsDir() {
			return nil
		}
		return fmt.Errorf("creating the directory %s: %w", s.where(dir), err)
	}
	_ = c.Chmod(s.remote(dir), 0o700)
	return nil
}

// regularAt checks that key names a regular file (not a link, a named pipe, a device or a
// directory) in directories that are no links, before it is opened: OpenSSH's server would
// block in opening a named pipe, with no way to cancel it.
func (s *Target) regularAt(c *sftplib.Client, key string) error {
	ok, err := s.checkDirs(c, path.Dir(key), false)
	if err != nil {
		return err
	}
	if !ok {
		return os.ErrNotExist
	}
	info, err := c.Lstat(s.remote(key))
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("it is not a regular file but %s: not a backup this tool wrote", target.FileKind(info.Mode()))
	}
	return nil
}

// openChecked opens the regular file at key on c, giving up (and dropping c, whose request
// may never be answered) when ctx ends or the server takes longer than openTimeout.
func (s *Target) openChecked(ctx context.Context, c *sftpConn, key string) (*sftplib.File, int64, error) {
	if err := s.regularAt(c.client, key); err != nil {
		return nil, 0, err
	}
	type opened struct {
		f    *sftplib.File
		size int64
		err  error
	}
	done := make(chan opened, 1)
	go func() {
		f, size, err := openRegular(c.client, s.remote(key))
		done <- opened{f, size, err}
	}()
	timer := time.NewTimer(openTimeout)
	defer timer.Stop()
	select {
	case o := <-done:
		return o.f, o.size, o.err
	case <-ctx.Done():
	case <-timer.C:
	}
	s.drop(c) // its answer would come never, or after the file is no longer wanted
	go func() {
		if o := <-done; o.f != nil {
			o.f.Close()
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return nil, 0, fmt.Errorf("the server did not open the file in %v (a named pipe or a device where a backup should be?)", openTimeout)
}
