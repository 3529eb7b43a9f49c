package webdav

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// propfindBody asks for what a listing needs, nothing more.
const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/><getlastmodified/></prop></propfind>`

// entry is one member of a collection.
type entry struct {
	name  string
	dir   bool
	size  int64
	mtime time.Time
}

// davResponse is one <response> of a PROPFIND's multistatus.
type davResponse struct {
	Href     string `xml:"DAV: href"`
	Propstat []struct {
		Status string `xml:"DAV: status"`
		Prop   struct {
			ResourceType struct {
				Collection *struct{} `xml:"DAV: collection"`
			} `xml:"DAV: resourcetype"`
			Length   string `xml:"DAV: getcontentlength"`
			Modified string `xml:"DAV: getlastmodified"`
		} `xml:"DAV: prop"`
	} `xml:"DAV: propstat"`
}

// members lists the collection dir (Depth: 1), calling f for each member as the server's
// answer is read: the answer is decoded one <response> at a time, never held whole, and a
// server that stops sending it for t.stall fails the listing. A missing collection has no
// members.
func (t *Target) members(ctx context.Context, dir string, f func(entry) error) error {
	u := t.url(dir, true)
	resp, err := t.do(ctx, request{method: "PROPFIND", url: u, body: []byte(propfindBody),
		header: http.Header{"Depth": {"1"}, "Content-Type": {`application/xml; charset="utf-8"`}}})
	if err != nil {
		return t.netError(err)
	}
	switch resp.StatusCode {
	case http.StatusMultiStatus:
	case http.StatusNotFound:
		drain(resp)
		return nil
	default:
		return t.statusError(resp)
	}
	defer drain(resp)
	self, _ := url.Parse(u)
	dec := xml.NewDecoder(resp.Body)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the server's listing of %s: %w", u, t.bodyError(resp, err))
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Space != "DAV:" || start.Name.Local != "response" {
			continue
		}
		var r davResponse
		if err := dec.DecodeElement(&r, &start); err != nil {
			return fmt.Errorf("reading the server's listing of %s: %w", u, t.bodyError(resp, err))
		}
		if e, ok := r.entry(self); ok {
			if err := f(e); err != nil {
				return err
			}
		}
	}
}

// entry is the member a response names, or false for the collection itself (or a response
// this client cannot read: outside the collection, or without its properties).
func (r davResponse) entry(self *url.URL) (entry, bool) {
	href, err := self.Parse(strings.TrimSpace(r.Href))
	if err != nil {
		return entry{}, false
	}
	parent, name := path.Split(strings.TrimSuffix(href.Path, "/"))
	if name == "" || parent != self.Path {
		return entry{}, false
	}
	e := entry{name: name, size: -1}
	for _, ps := range r.Propstat {
		if !strings.Contains(ps.Status, " 200") {
			continue
		}
		e.dir = e.dir || ps.Prop.ResourceType.Collection != nil
		if n, err := strconv.ParseInt(strings.TrimSpace(ps.Prop.Length), 10, 64); err == nil {
			e.size = n
		}
		if m, err := http.ParseTime(strings.TrimSpace(ps.Prop.Modified)); err == nil {
			e.mtime = m
		}
	}
	return e, true
}

// List walks the collection of prefix for files under it, as Local does: hidden names
// (temporary files) skipped, each collection's keys in lexical order, one collection's
// names held at a time per level.
func (t *Target) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) {
		start := ""
		if i := strings.LastIndex(prefix, "/"); i > 0 {
			start = prefix[:i]
			if target.ValidateKey(start) != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: prefix %q is not a clean relative path", t, prefix))
				return
			}
		}
		w := &walk{ctx: ctx, t: t, prefix: prefix, yield: yield}
		if err := w.dir(start); err != nil && !errors.Is(err, errStopped) {
			yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
		}
	}
}

// errStopped ends a walk whose consumer stopped.
var errStopped = errors.New("stopped")

type walk struct {
	ctx    context.Context
	t      *Target
	prefix string
	yield  func(target.Object, error) bool
}

func (w *walk) dir(dir string) error {
	var entries []entry
	err := w.t.members(w.ctx, dir, func(e entry) error {
		if !strings.HasPrefix(e.name, ".") { // temporary files, hidden collections
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A collection's keys are its name and "/" then theirs: sorted so, the order is S3's.
	sortKey := func(e entry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := path.Join(dir, e.name)
		if !strings.HasPrefix(p, w.prefix) && !strings.HasPrefix(w.prefix, p+"/") {
			continue
		}
		switch {
		case e.dir:
			if err := w.dir(p); err != nil {
				return err
			}
		case strings.HasPrefix(p, w.prefix):
			if !w.yield(target.Object{Key: p, Size: e.size, ModTime: e.mtime}, nil) {
				return errStopped
			}
		}
	}
	return nil
}

// RemoveIncomplete removes the temporary files of unfinished Puts of key.
func (t *Target) RemoveIncomplete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	dir, base := path.Split(key)
	_, err := t.removeTemporaries(ctx, strings.TrimSuffix(dir, "/"), func(e entry) bool {
		return strings.HasPrefix(e.name, "."+base+target.TempMarker)
	})
	return err
}

// RemoveStale removes the temporary files of Puts that never finished in the collection of
// prefix, older than before.
func (t *Target) RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error) {
	dir := strings.TrimSuffix(prefix, "/")
	if err := target.ValidateKey(dir); err != nil {
		return nil, err
	}
	return t.removeTemporaries(ctx, dir, func(e entry) bool {
		return strings.HasPrefix(e.name, ".") && strings.Contains(e.name, target.TempMarker) && !e.mtime.IsZero() && e.mtime.Before(before)
	})
}

func (t *Target) removeTemporaries(ctx context.Context, dir string, match func(entry) bool) ([]string, error) {
	var found []string
	err := t.members(ctx, dir, func(e entry) error {
		if !e.dir && match(e) {
			found = append(found, path.Join(dir, e.name))
		}
		return nil
	})
	var removed []string
	for _, p := range found {
		if err != nil {
			break
		}
		if err = t.delete(ctx, p); err == nil {
			removed = append(removed, p)
		}
	}
	if err != nil {
		return removed, fmt.Errorf("removing unfinished files in %s: %w", t.where(dir), err)
	}
	return removed, nil
}

func isNotExist(err error) bool { return errors.Is(err, target.ErrNotExist) }
