package rclone

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/config/configmap"
	"github.com/rclone/rclone/lib/encoder"
)

// ErrLink is wrapped when a path below the target's directory is a symbolic link (or, over
// sftp, another file that is no directory where one should be): the local disk and an SFTP
// server resolve a path's links themselves, so a link placed there (by whoever else can write
// in the directory) would lead a Put, Get, Delete or listing to files elsewhere.
var ErrLink = errors.New("a symbolic link in the target's directory: refused, as it could lead outside it")

// linkOptions are the settings forced on the backends whose storage has links, whatever
// rclone.conf says: sftp lists no link (skip_links), local neither follows nor translates
// them (its listing skips them).
var linkOptions = map[string]configmap.Simple{
	"sftp":  {"skip_links": "true"},
	"local": {"copy_links": "false", "links": "false"},
}

// localEncoding is how the local backend names files on disk (its encoding setting).
func localEncoding(m configmap.Getter) encoder.MultiEncoder {
	var enc encoder.MultiEncoder
	if v, ok := m.Get("encoding"); !ok || enc.Set(v) != nil {
		return encoder.OS
	}
	return enc
}

// localPath is the path on disk of rel, below the local remote's root, as rclone makes it.
func (t *Target) localPath(rel string) string {
	root := filepath.FromSlash(t.enc.FromStandardPath(t.f.Root()))
	return filepath.Join(root, filepath.FromSlash(t.enc.FromStandardPath(rel)))
}

// checkKey checks key's directories (checkDirs) and, on the local disk, that key itself is
// no link (the local backend opens what a link at a key names).
func (t *Target) checkKey(ctx context.Context, key string) error {
	if err := t.checkDirs(ctx, path.Dir(key)); err != nil {
		return err
	}
	if t.backend != "local" {
		return nil // sftp: the final link is not seen (docs say so); others have no links
	}
	info, err := os.Lstat(t.localPath(key))
	if err == nil && info.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s: %w", key, ErrLink)
	}
	return nil
}

// checkDirs checks that the key directory dir ("" or ".": the target's own) and each one
// above it, up to the target's directory, is a directory and no link, where the backend's
// storage has links; a missing one ends the check (rclone makes real directories). The
// target's directory itself may be a link: the user named it. A link swapped in after the
// check is not seen (neither rclone nor SFTP opens a path relative to a directory held).
func (t *Target) checkDirs(ctx context.Context, dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	check := map[string]func(context.Context, string) (bool, error){
		"local": t.localDir,
		"sftp":  t.listedDir,
	}[t.backend]
	if check == nil {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		ok, err := check(ctx, cur)
		if err != nil || !ok {
			return err
		}
	}
	return nil
}

// localDir says whether dir, below the target's directory on the local disk, exists, and
// fails if it is a link or not a directory.
func (t *Target) localDir(_ context.Context, dir string) (bool, error) {
	info, err := os.Lstat(t.localPath(dir))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case info.Mode()&os.ModeSymlink != 0:
		return false, fmt.Errorf("%s: %w", dir, ErrLink)
	case !info.IsDir():
		return false, fmt.Errorf("%s is not a directory but %s", dir, target.FileKind(info.Mode()))
	}
	return true, nil
}

// listedDir says whether dir exists on an SFTP server, and fails unless it is a directory its
// parent's listing shows: rclone's sftp backend (skip_links) leaves links and other special
// files out of listings, but follows them when it opens a path.
func (t *Target) listedDir(ctx context.Context, dir string) (bool, error) {
	for range 2 { // twice: a directory made by another writer between the two looks is fine
		listed, err := t.listedIn(ctx, dir)
		if err != nil || listed {
			return listed, err
		}
		_, err = t.f.NewObject(ctx, dir)
		switch {
		case errors.Is(err, fs.ErrorObjectNotFound), errors.Is(err, fs.ErrorDirNotFound):
			return false, nil
		case err == nil:
			return false, fmt.Errorf("%s: %w", dir, ErrLink) // a link to a file, or no directory
		case !errors.Is(err, fs.ErrorIsDir):
			return false, explain(t.cfg, err)
		}
	}
	return false, fmt.Errorf("%s: %w", dir, ErrLink) // a directory the listing leaves out
}

// listedIn says whether dir's parent lists it as a directory; a file listed there fails.
func (t *Target) listedIn(ctx context.Context, dir string) (bool, error) {
	parent := path.Dir(dir)
	if parent == "." {
		parent = ""
	}
	entries, err := t.f.List(ctx, parent)
	if errors.Is(err, fs.ErrorDirNotFound) {
		return false, nil
	}
	if err != nil {
		return false, explain(t.cfg, err)
	}
	for _, e := range entries {
		if e.Remote() != dir {
			continue
		}
		if _, ok := e.(fs.Directory); !ok {
			return false, fmt.Errorf("%s is a file, not a directory", dir)
		}
		return true, nil
	}
	return false, nil
}
