// Package target stores artifacts: a Target puts, gets, lists and deletes objects by key.
// Keys are slash-separated relative paths; a Target refuses keys that would escape it.
package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path"
	"strings"
	"time"
)

// Target is where backups are kept.
type Target interface {
	// Put stores r under key. The object becomes visible only once complete; a failed or
	// cancelled Put leaves nothing behind. Put never replaces an existing object.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get opens the object at key. A missing object gives an error wrapping ErrNotExist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List yields the objects whose keys start with prefix, one at a time (a listing of a
	// hundred thousand backups is never held at once), the keys of each directory in lexical
	// order, as S3 lists them. An error ends the listing: it is yielded last.
	List(ctx context.Context, prefix string) iter.Seq2[Object, error]
	// Delete removes the object at key; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// String describes the target for messages, without secrets.
	String() string
}

// FileCreator is implemented by targets that keep their objects as local files: the caller
// writes an object's file itself (see PendingFile) — or lets another process write it.
type FileCreator interface {
	Create(ctx context.Context, key string) (*PendingFile, error)
}

// Files returns how to create t's objects as local files, when t keeps them so.
func Files(t Target) (FileCreator, bool) {
	switch t := t.(type) {
	case *sub:
		if _, ok := Files(t.t); ok {
			return t, true
		}
	case FileCreator:
		return t, true
	}
	return nil, false
}

// Pinned is one object's content as it was when pinned: every Open reads exactly those
// bytes, or fails if the object was replaced meanwhile. A restore reads an artifact twice
// (verify, then apply) and must apply the bytes it verified.
type Pinned interface {
	Open(ctx context.Context) (io.ReadCloser, error)
	// Size is the object's size when it was pinned.
	Size() int64
	Close() error
}

// PinnedFile is a Pinned object that is a local file: another process may read it, given its
// descriptor.
type PinnedFile interface {
	File() *os.File
}

// Pinner is implemented by targets that can pin an object.
type Pinner interface {
	Pin(ctx context.Context, key string) (Pinned, error)
}

// Pin pins the object at key when t can; otherwise every Open gets the key anew (the
// restore's final checksum still catches a replaced object).
func Pin(ctx context.Context, t Target, key string) (Pinned, error) {
	if p, ok := t.(Pinner); ok {
		return p.Pin(ctx, key)
	}
	rc, err := t.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	rc.Close()
	return unpinned{t, key}, nil
}

type unpinned struct {
	t   Target
	key string
}

func (u unpinned) Open(ctx context.Context) (io.ReadCloser, error) { return u.t.Get(ctx, u.key) }
func (u unpinned) Size() int64                                     { return -1 }
func (u unpinned) Close() error                                    { return nil }

// ErrChanged is wrapped when a pinned object was replaced between two reads.
var ErrChanged = errors.New("the object was replaced since it was first read")

// Object is one stored object.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Buffered is implemented by targets that hold a buffer of their own while they store an
// object (an S3 upload's part).
type Buffered interface {
	BufferSize() int64
}

// BufferSize is how much t buffers while it stores an object (0 for most targets).
func BufferSize(t Target) int64 {
	switch t := t.(type) {
	case *sub:
		return BufferSize(t.t)
	case Buffered:
		return t.BufferSize()
	}
	return 0
}

// Collect gathers a listing (for the few callers that need a small one whole).
func Collect(objects iter.Seq2[Object, error]) ([]Object, error) {
	var out []Object
	for o, err := range objects {
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Errors wrapped by targets.
var (
	ErrNotExist = errors.New("object does not exist")
	ErrExist    = errors.New("object already exists")
)

// ValidateKey refuses keys that are empty, absolute, contain "." or ".." components,
// backslashes or control characters, or name hidden files (the targets' temporary names).
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	if strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return fmt.Errorf("key %q must be a relative path with forward slashes", key)
	}
	if path.Clean(key) != key {
		return fmt.Errorf("key %q is not a clean path", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == ".." || part == "." {
			return fmt.Errorf("key %q escapes the target", key)
		}
		if strings.HasPrefix(part, ".") {
			return fmt.Errorf("key %q has a hidden component %q", key, part)
		}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("key %q contains a control character", key)
		}
	}
	return nil
}
