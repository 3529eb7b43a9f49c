package rclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/hash"
)

// Pin finds the object at key and notes its size, modification time, ID (Drive, Dropbox, B2
// give each upload its own) and hash (kept by the remote on Drive, Dropbox, B2; computed by
// reading the object on a local disk, or by md5sum on an SFTP server that lets rclone run it).
// Every Open looks at the key again and fails with target.ErrChanged if any of them changed,
// then reads the object found at Pin.
func (t *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	ctx = quiet(ctx)
	o, err := t.object(ctx, key)
	if err != nil {
		return nil, err
	}
	p := &pinned{t: t, o: o, size: o.Size(), mtime: o.ModTime(ctx)}
	p.id = id(o)
	if p.ht = t.f.Hashes().GetOne(); p.ht != hash.None {
		if p.sum, err = o.Hash(ctx, p.ht); err != nil || p.sum == "" {
			p.ht = hash.None // e.g. an SFTP server that runs no command
		}
	}
	return p, nil
}

type pinned struct {
	t     *Target
	o     fs.Object
	size  int64
	mtime time.Time
	id    string
	ht    hash.Type
	sum   string
}

func (p *pinned) Size() int64  { return p.size }
func (p *pinned) Close() error { return nil }

func (p *pinned) Open(ctx context.Context) (io.ReadCloser, error) {
	ctx = quiet(ctx)
	key := p.o.Remote()
	now, err := p.t.object(ctx, key)
	if errors.Is(err, target.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p.t.where(key), target.ErrChanged)
	}
	if err != nil {
		return nil, err
	}
	if now.Size() != p.size || !now.ModTime(ctx).Equal(p.mtime) || id(now) != p.id {
		return nil, fmt.Errorf("%s: %w", p.t.where(key), target.ErrChanged)
	}
	if p.ht != hash.None {
		sum, err := now.Hash(ctx, p.ht)
		if err != nil {
			return nil, fmt.Errorf("reading %s: its hash: %w", p.t.where(key), explain(p.t.cfg, err))
		}
		if sum != p.sum {
			return nil, fmt.Errorf("%s: %w", p.t.where(key), target.ErrChanged)
		}
	}
	return p.t.open(ctx, p.o)
}

// id is an object's ID, where the remote gives one.
func id(o fs.Object) string {
	if ider, ok := o.(fs.IDer); ok {
		return ider.ID()
	}
	return ""
}
