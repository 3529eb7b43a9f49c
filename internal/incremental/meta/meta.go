// Package meta is the parent snapshot's file metadata as the caller streams it to the worker
// of an incremental backup, and the PAX records of the worker's tar stream. The metadata is
// one record per regular file (path, size, mtime, ctime, inode, device) in walk order (see
// Compare), paths prefix-compressed: about 30 bytes a file, read as the walk goes, so neither
// side holds it whole (a million files cost nothing but the stream).
//
// Stream: Magic, then records, each 'f' ‖ uvarint(shared prefix with the previous path) ‖
// uvarint(len(rest)) ‖ rest ‖ varint(size) ‖ varint(mtime ns) ‖ varint(ctime ns) ‖
// uvarint(inode) ‖ uvarint(device); then 'e'.
package meta

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Magic begins a metadata stream.
const Magic = "docker-backup parent v1\n"

// PAX records of an incremental tar stream (beside the standard mtime and ctime).
const (
	PAXInode = "DOCKERBACKUP.inode"
	PAXDev   = "DOCKERBACKUP.dev"
	PAXNlink = "DOCKERBACKUP.nlink"
	// PAXUnchanged marks a header-only regular file whose size, mtime, ctime and inode equal
	// the parent's: its value is the file's size (the entry itself carries no content).
	PAXUnchanged = "DOCKERBACKUP.unchanged"
)

// MaxPath bounds a record's path (the kernel's PATH_MAX is 4096; entry names add the mount).
const MaxPath = 16 << 10

// Stats is what an incremental archive found: the entries and regular files' bytes it holds,
// how many files it read, and how many it sent header-only as unchanged (and their bytes).
type Stats struct {
	Files          int64 `json:"files"`
	Bytes          int64 `json:"bytes"`
	Read           int64 `json:"read"`
	Unchanged      int64 `json:"unchanged"`
	UnchangedBytes int64 `json:"unchanged_bytes"`
}

// Record is one regular file of the parent snapshot.
type Record struct {
	Path         string // the tar entry's name ("data/x", no leading slash)
	Size         int64
	MTime, CTime time.Time
	Inode, Dev   uint64
}

// Unchanged reports whether a file with these attributes need not be read again: its size,
// modification and change times (to the nanosecond) and inode are the record's.
func (r *Record) Unchanged(size int64, mtime, ctime time.Time, inode uint64) bool {
	return r.Size == size && r.MTime.Equal(mtime) && r.CTime.Equal(ctime) && r.Inode == inode
}

// Compare orders paths as a depth-first walk meets them when each directory's entries are
// sorted by name: component by component ('/' below every other byte).
func Compare(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		if x < y {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// Encoder writes a metadata stream.
type Encoder struct {
	w    *bufio.Writer
	prev string
	buf  []byte
	n    int64
}

// NewEncoder writes the magic to w; Close writes the end.
func NewEncoder(w io.Writer) *Encoder {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(Magic)
	return &Encoder{w: bw}
}

// Add writes a record; records come in increasing Compare order of their paths.
func (e *Encoder) Add(r Record) error {
	if r.Path == "" || len(r.Path) > MaxPath {
		return fmt.Errorf("parent metadata: path %q is empty or longer than %d bytes", r.Path, MaxPath)
	}
	if e.n > 0 && Compare(e.prev, r.Path) >= 0 {
		return fmt.Errorf("parent metadata: %q comes after %q, not in walk order", r.Path, e.prev)
	}
	shared := 0
	for shared < len(r.Path) && shared < len(e.prev) && r.Path[shared] == e.prev[shared] {
		shared++
	}
	b := append(e.buf[:0], 'f')
	b = binary.AppendUvarint(b, uint64(shared))
	b = binary.AppendUvarint(b, uint64(len(r.Path)-shared))
	b = append(b, r.Path[shared:]...)
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.MTime.UnixNano())
	b = binary.AppendVarint(b, r.CTime.UnixNano())
	b = binary.AppendUvarint(b, r.Inode)
	b = binary.AppendUvarint(b, r.Dev)
	e.buf = b
	e.prev = r.Path
	e.n++
	_, err := e.w.Write(b)
	return err
}

// Close writes the end of the stream and flushes it.
func (e *Encoder) Close() error {
	e.w.WriteByte('e')
	return e.w.Flush()
}

// Decoder reads a metadata stream, a record at a time.
type Decoder struct {
	r     *bufio.Reader
	prev  []byte
	ended bool
	magic bool
}

// NewDecoder reads from r (it reads no further than the stream's end).
func NewDecoder(r io.Reader) *Decoder {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Decoder{r: br}
}

// Next returns the next record, io.EOF after the last.
func (d *Decoder) Next() (Record, error) {
	if d.ended {
		return Record{}, io.EOF
	}
	if !d.magic {
		b := make([]byte, len(Magic))
		if _, err := io.ReadFull(d.r, b); err != nil || string(b) != Magic {
			return Record{}, fmt.Errorf("parent metadata: the stream does not begin with %q (%v)", Magic, err)
		}
		d.magic = true
	}
	kind, err := d.r.ReadByte()
	if err != nil {
		return Record{}, bad(err)
	}
	switch kind {
	case 'e':
		d.ended = true
		return Record{}, io.EOF
	case 'f':
	default:
		return Record{}, fmt.Errorf("parent metadata: record kind %q is neither 'f' nor 'e'", kind)
	}
	shared, err := binary.ReadUvarint(d.r)
	if err != nil {
		return Record{}, bad(err)
	}
	rest, err := binary.ReadUvarint(d.r)
	if err != nil {
		return Record{}, bad(err)
	}
	if shared > uint64(len(d.prev)) || shared+rest > MaxPath || rest == 0 {
		return Record{}, fmt.Errorf("parent metadata: a path of %d+%d bytes after one of %d (allowed: up to %d, a new name)", shared, rest, len(d.prev), MaxPath)
	}
	p := make([]byte, shared+rest)
	copy(p, d.prev[:shared])
	if _, err := io.ReadFull(d.r, p[shared:]); err != nil {
		return Record{}, bad(err)
	}
	var v [5]uint64
	for i := range v {
		if i < 3 {
			x, err := binary.ReadVarint(d.r)
			v[i] = uint64(x)
			if err != nil {
				return Record{}, bad(err)
			}
			continue
		}
		if v[i], err = binary.ReadUvarint(d.r); err != nil {
			return Record{}, bad(err)
		}
	}
	rec := Record{Path: string(p), Size: int64(v[0]), MTime: time.Unix(0, int64(v[1])), CTime: time.Unix(0, int64(v[2])), Inode: v[3], Dev: v[4]}
	if len(d.prev) > 0 && Compare(string(d.prev), rec.Path) >= 0 {
		return Record{}, fmt.Errorf("parent metadata: %q comes after %q, not in walk order", rec.Path, d.prev)
	}
	d.prev = p
	return rec, nil
}

// Drain reads the rest of the stream (to its end record).
func (d *Decoder) Drain() error {
	for {
		if _, err := d.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func bad(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("parent metadata: %w", err)
}

// Cursor finds the records of paths asked for in increasing Compare order, reading the
// stream as far as each one: constant memory, whatever the number of files.
type Cursor struct {
	d    *Decoder
	cur  *Record
	done bool
}

// NewCursor reads records from d.
func NewCursor(d *Decoder) *Cursor { return &Cursor{d: d} }

// Find returns the record of p, or nil. Paths asked out of order find nothing (the walk
// then reads those files: slower, never wrong).
func (c *Cursor) Find(p string) (*Record, error) {
	for !c.done {
		if c.cur != nil {
			switch cmp := Compare(c.cur.Path, p); {
			case cmp == 0:
				return c.cur, nil
			case cmp > 0:
				return nil, nil
			}
		}
		r, err := c.d.Next()
		if err == io.EOF {
			c.done, c.cur = true, nil
			break
		}
		if err != nil {
			return nil, err
		}
		c.cur = &r
	}
	return nil, nil
}

// Drain reads the stream to its end (the sender's writes then all complete).
func (c *Cursor) Drain() error {
	c.done = true
	return c.d.Drain()
}

// FormatInt is strconv.FormatUint of a PAX record's value.
func FormatInt(v uint64) string { return strconv.FormatUint(v, 10) }
