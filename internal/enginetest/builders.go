package enginetest

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/containers/dependents"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// ContainerSpec is a container the fake Engine knows: what inspecting and listing it report,
// whether it runs, and its files. Build one with Container or Service and options.
type ContainerSpec struct {
	// ID is the container's ID; empty: made from its name when it is added to an Engine.
	ID      string
	Name    string // without the leading slash
	Image   string // the image reference it was created from
	ImageID string
	Labels  map[string]string
	Env     []string // KEY=VALUE
	Path    string   // its process: entrypoint ...
	Args    []string // ... and arguments
	Mounts  []container.MountPoint
	Running bool
	User    string
	// StopTimeout is its own stop timeout in seconds; nil: the Engine's default.
	StopTimeout    *int
	ReadonlyRootfs bool
	// FinishedAt is when it last stopped (RFC 3339); a stop sets it.
	FinishedAt string
	// Files are its regular files by absolute path; directories are those given with WithDir,
	// the mounts' destinations and every directory above a file, link or directory.
	Files map[string]File
	Dirs  map[string]bool
	// Links are its symbolic links: path → link target.
	Links map[string]string
}

// File is a regular file in a container: one it holds (CopyFromContainer) or one written
// into it (CopyToContainer).
type File struct {
	Path     string
	Content  string
	Mode     int64
	UID, GID int
}

// Option sets something of a ContainerSpec.
type Option func(*ContainerSpec)

// Container is a running container named name, outside compose, of the image
// "example/NAME", with the options applied in order.
func Container(name string, opts ...Option) *ContainerSpec {
	c := &ContainerSpec{Name: name, Image: "example/" + name, ImageID: "sha256:" + idOf("image " + name)[:64],
		Path: "/entrypoint", Labels: map[string]string{}, Running: true,
		Files: map[string]File{}, Dirs: map[string]bool{}, Links: map[string]string{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Service is the container of a compose service as docker compose names and labels it:
// "PROJECT-SERVICE-1", replica 1, of the image "example/SERVICE".
func Service(project, service string, opts ...Option) *ContainerSpec {
	return Container(project+"-"+service+"-1",
		append([]Option{WithProject(project), WithService(service), WithReplica(1), WithImage("example/" + service)}, opts...)...)
}

// WithID sets the container's ID.
func WithID(id string) Option { return func(c *ContainerSpec) { c.ID = id } }

// WithProject sets the compose project label.
func WithProject(project string) Option {
	return WithLabel(containers.LabelProject, project)
}

// WithService sets the compose service label.
func WithService(service string) Option {
	return WithLabel(containers.LabelService, service)
}

// WithReplica makes the container replica n of its compose service: the container-number
// label, and (with its project and service set) the name compose gives it.
func WithReplica(n int) Option {
	return func(c *ContainerSpec) {
		c.Labels[containers.LabelContainerNumber] = strconv.Itoa(n)
		p, s := c.Labels[containers.LabelProject], c.Labels[containers.LabelService]
		if p != "" && s != "" {
			c.Name = fmt.Sprintf("%s-%s-%d", p, s, n)
		}
	}
}

// OneOff makes the container a one-off of its service (docker compose run), with the name
// compose gives those.
func OneOff() Option {
	return func(c *ContainerSpec) {
		c.Labels[containers.LabelOneOff] = "True"
		delete(c.Labels, containers.LabelContainerNumber)
		c.Name = fmt.Sprintf("%s-%s-run-%s", c.Labels[containers.LabelProject], c.Labels[containers.LabelService], idOf(c.Name)[:12])
	}
}

// DependsOn sets the compose depends_on label: the container's service depends on these.
func DependsOn(services ...string) Option {
	var deps []string
	for _, s := range services {
		deps = append(deps, s+":service_started:false")
	}
	return WithLabel(dependents.LabelDependsOn, strings.Join(deps, ","))
}

// Sidecar labels the container a docker-backup sidecar.
func Sidecar() Option { return WithLabel(labels.Sidecar, "true") }

// WithLabel sets a label.
func WithLabel(key, value string) Option { return func(c *ContainerSpec) { c.Labels[key] = value } }

// WithLabels sets labels.
func WithLabels(kv map[string]string) Option {
	return func(c *ContainerSpec) {
		for k, v := range kv {
			c.Labels[k] = v
		}
	}
}

// WithImage sets the image reference the container was created from.
func WithImage(ref string) Option { return func(c *ContainerSpec) { c.Image = ref } }

// WithImageID sets the ID of the container's image.
func WithImageID(id string) Option { return func(c *ContainerSpec) { c.ImageID = id } }

// WithEnv adds KEY=VALUE entries to the container's environment.
func WithEnv(kv ...string) Option { return func(c *ContainerSpec) { c.Env = append(c.Env, kv...) } }

// WithCommand sets the container's process.
func WithCommand(path string, args ...string) Option {
	return func(c *ContainerSpec) { c.Path, c.Args = path, args }
}

// WithUser sets the user commands run as (the image's USER).
func WithUser(user string) Option { return func(c *ContainerSpec) { c.User = user } }

// WithStopTimeout sets the container's own stop timeout, in seconds.
func WithStopTimeout(seconds int) Option { return func(c *ContainerSpec) { c.StopTimeout = &seconds } }

// ReadonlyRootfs makes the container's root file system read-only.
func ReadonlyRootfs() Option { return func(c *ContainerSpec) { c.ReadonlyRootfs = true } }

// Running makes the container a running one (the default).
func Running() Option { return func(c *ContainerSpec) { c.Running = true } }

// Stopped makes the container a stopped one.
func Stopped() Option {
	return func(c *ContainerSpec) {
		c.Running = false
		if c.FinishedAt == "" {
			c.FinishedAt = "2026-11-26T10:00:00Z"
		}
	}
}

// WithFinishedAt sets when the container last stopped (RFC 3339).
func WithFinishedAt(t string) Option { return func(c *ContainerSpec) { c.FinishedAt = t } }

// WithMount adds a mount.
func WithMount(m container.MountPoint) Option {
	return func(c *ContainerSpec) { c.Mounts = append(c.Mounts, m) }
}

// WithVolume mounts the named local volume read-write at dest.
func WithVolume(name, dest string) Option {
	return WithMount(container.MountPoint{Type: mount.TypeVolume, Name: name, Source: "/var/lib/docker/volumes/" + name + "/_data",
		Destination: dest, Driver: "local", Mode: "z", RW: true})
}

// WithBind bind-mounts the host's src read-write at dest.
func WithBind(src, dest string) Option {
	return WithMount(container.MountPoint{Type: mount.TypeBind, Source: src, Destination: dest, RW: true})
}

// WithFile puts a regular file (mode 0644, owned by root) in the container.
func WithFile(p, content string) Option {
	return WithFiles(File{Path: p, Content: content, Mode: 0o644})
}

// WithFiles puts regular files in the container.
func WithFiles(files ...File) Option {
	return func(c *ContainerSpec) {
		for _, f := range files {
			f.Path = path.Clean(f.Path)
			c.Files[f.Path] = f
		}
	}
}

// WithDir makes a directory in the container.
func WithDir(p string) Option { return func(c *ContainerSpec) { c.Dirs[path.Clean(p)] = true } }

// WithLink makes a symbolic link at p to target in the container.
func WithLink(p, target string) Option {
	return func(c *ContainerSpec) { c.Links[path.Clean(p)] = target }
}

// clone is a deep copy of c: what the Engine keeps, and what it hands out.
func (c *ContainerSpec) clone() *ContainerSpec {
	out := *c
	out.Labels = cloneMap(c.Labels)
	out.Env = append([]string(nil), c.Env...)
	out.Args = append([]string(nil), c.Args...)
	out.Mounts = append([]container.MountPoint(nil), c.Mounts...)
	out.Files = cloneMap(c.Files)
	out.Dirs = cloneMap(c.Dirs)
	out.Links = cloneMap(c.Links)
	if c.StopTimeout != nil {
		s := *c.StopTimeout
		out.StopTimeout = &s
	}
	return &out
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
