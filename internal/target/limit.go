package target

import (
	"context"
	"io"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
)

// PacedPutter is implemented by a target that paces the bytes of a Put as it sends them: one
// that buffers a part before it sends it (S3), whose reads are not its sends.
type PacedPutter interface {
	PutPaced(ctx context.Context, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error)
}

// PutLimited is t.Put sending at most at lim's rate (nil: no cap). A directory target is local
// and is written at full speed: the cap is for remote targets. A target that buffers parts
// (S3) is paced by what it sends, others by what they read.
func PutLimited(ctx context.Context, t Target, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error) {
	if lim == nil {
		return t.Put(ctx, key, r)
	}
	if _, local := Files(t); local {
		return t.Put(ctx, key, r)
	}
	switch t := t.(type) {
	case *sub:
		k, err := t.key(key)
		if err != nil {
			return 0, err
		}
		return PutLimited(ctx, t.t, k, r, lim)
	case PacedPutter:
		return t.PutPaced(ctx, key, r, lim)
	}
	return t.Put(ctx, key, lim.Reader(ctx, r))
}

// Capped reports whether PutLimited caps uploads to t (a directory target's are not).
func Capped(t Target) bool {
	_, local := Files(t)
	return !local
}
