package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// kind is what a path in a container is: 0 nothing, else a file, directory or link.
type kind int

const (
	none kind = iota
	file
	dir
	link
)

// kindOf says what p is in c. The caller holds the engine's lock.
func (c *ContainerSpec) kindOf(p string) kind {
	p = path.Clean(p)
	if _, ok := c.Files[p]; ok {
		return file
	}
	if _, ok := c.Links[p]; ok {
		return link
	}
	if p == "/" || c.Dirs[p] {
		return dir
	}
	inside := func(q string) bool { return strings.HasPrefix(path.Clean(q), p+"/") }
	for _, m := range c.Mounts {
		if path.Clean(m.Destination) == p || inside(m.Destination) {
			return dir
		}
	}
	for q := range c.Files {
		if inside(q) {
			return dir
		}
	}
	for q := range c.Links {
		if inside(q) {
			return dir
		}
	}
	for q := range c.Dirs {
		if inside(q) {
			return dir
		}
	}
	return none
}

// ContainerStatPath stats a path in a container without following a link at its end.
func (e *Engine) ContainerStatPath(_ context.Context, id string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	if err := e.call("ContainerStatPath", id); err != nil {
		return client.ContainerStatPathResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return client.ContainerStatPathResult{}, notFound("container", id)
	}
	st, ok := c.stat(o.Path)
	if !ok {
		return client.ContainerStatPathResult{}, notFound("file or directory", o.Path)
	}
	return client.ContainerStatPathResult{Stat: st}, nil
}

func (c *ContainerSpec) stat(p string) (container.PathStat, bool) {
	p = path.Clean(p)
	name := path.Base(p)
	switch c.kindOf(p) {
	case file:
		f := c.Files[p]
		return container.PathStat{Name: name, Size: int64(len(f.Content)), Mode: fs.FileMode(f.Mode)}, true
	case link:
		return container.PathStat{Name: name, Mode: fs.ModeSymlink | 0o777, LinkTarget: c.Links[p]}, true
	case dir:
		return container.PathStat{Name: name, Mode: fs.ModeDir | 0o755}, true
	}
	return container.PathStat{}, false
}

// CopyFromContainer is a tar archive of a path in a container, as the Engine makes it: a file
// as its base name; a directory as its base name and what is below it ("/data" gives
// "data/x"), or, for "DIR/.", only what is below it ("./x").
func (e *Engine) CopyFromContainer(_ context.Context, id string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	if err := e.call("CopyFromContainer", id); err != nil {
		return client.CopyFromContainerResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return client.CopyFromContainerResult{}, notFound("container", id)
	}
	src := path.Clean(o.SourcePath)
	st, ok := c.stat(src)
	if !ok {
		return client.CopyFromContainerResult{}, notFound("file or directory", o.SourcePath)
	}
	base := path.Base(src)
	if strings.HasSuffix(o.SourcePath, "/.") {
		base = "."
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	c.archive(tw, src, base)
	if err := tw.Close(); err != nil {
		return client.CopyFromContainerResult{}, err
	}
	return client.CopyFromContainerResult{Content: io.NopCloser(&buf), Stat: st}, nil
}

// archive writes p, named name, and what is below it to tw.
func (c *ContainerSpec) archive(tw *tar.Writer, p, name string) {
	switch c.kindOf(p) {
	case file:
		f := c.Files[p]
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Size: int64(len(f.Content))})
		_, _ = io.WriteString(tw, f.Content)
		return
	case link:
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: c.Links[p], Mode: 0o777})
		return
	}
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
	for _, child := range c.children(p) {
		c.archive(tw, path.Join(p, child), name+"/"+child)
	}
}

// children are the names directly below the directory p, sorted.
func (c *ContainerSpec) children(p string) []string {
	set := map[string]bool{}
	add := func(q string) {
		q = path.Clean(q)
		rest, ok := strings.CutPrefix(q, strings.TrimSuffix(p, "/")+"/")
		if ok && rest != "" {
			first, _, _ := strings.Cut(rest, "/")
			set[first] = true
		}
	}
	for q := range c.Files {
		add(q)
	}
	for q := range c.Links {
		add(q)
	}
	for q := range c.Dirs {
		add(q)
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CopyToContainer extracts a tar archive at a directory of a container: its files, links and
// directories become the container's, each file is also recorded (Written).
func (e *Engine) CopyToContainer(_ context.Context, id string, o client.CopyToContainerOptions) (client.CopyToContainerResult, error) {
	if err := e.call("CopyToContainer", id); err != nil {
		return client.CopyToContainerResult{}, err
	}
	tr := tar.NewReader(o.Content)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return client.CopyToContainerResult{}, nil
		}
		if err != nil {
			return client.CopyToContainerResult{}, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return client.CopyToContainerResult{}, err
		}
		p := path.Join(o.DestinationPath, hdr.Name)
		e.mu.Lock()
		c := e.find(id)
		if c == nil {
			e.mu.Unlock()
			return client.CopyToContainerResult{}, notFound("container", id)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			c.Dirs[p] = true
		case tar.TypeSymlink:
			c.Links[p] = hdr.Linkname
		default:
			f := File{Path: p, Content: string(b), Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid}
			c.Files[p] = f
			e.written = append(e.written, f)
		}
		e.mu.Unlock()
	}
}
