// Package scratch creates throwaway copies of a service's container — same image, same
// configuration, fresh volumes, no network — for verify to restore a backup into. Every
// container and volume it creates is labelled with its owner and an expiry, so that what a
// killed process left behind is found and removed (Reap).
package scratch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Labels of scratch containers and volumes. They are outside the docker-backup.* namespace of
// job labels on purpose: a scratch container is never a service to back up.
const (
	// LabelScratch marks a scratch container or volume; its value is the scratch's ID.
	LabelScratch = "org.docker-backup.scratch"
	// LabelOwner names the process that created it (see Owner).
	LabelOwner = "org.docker-backup.scratch.owner"
	// LabelExpires is the Unix time after which anyone may remove it.
	LabelExpires = "org.docker-backup.scratch.expires"
	// LabelService names the service it copies ("project/service").
	LabelService = "org.docker-backup.scratch.service"
)

// Engine is the part of the Engine API client scratch containers need.
type Engine interface {
	containers.API
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	VolumeList(ctx context.Context, options client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
	ImageInspect(ctx context.Context, image string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ContainerLogs(ctx context.Context, id string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
}

// Spec is what to copy and who owns the copy.
type Spec struct {
	// From is the service's container; its configuration is copied (never its volumes,
	// bind mounts, networks or published ports).
	From *containers.Container
	// ImageID is the image to create the scratch from (the backed-up one); when the Engine
	// no longer has it, From's current image is used and Notes says so.
	ImageID string
	// Owner identifies the creating process (see Owner and Stale).
	Owner string
	// Lifetime bounds how long the scratch may live: past it, anyone may remove it.
	Lifetime time.Duration
	Log      *slog.Logger
}

// Scratch is one throwaway container, and the Container to act on it.
type Scratch struct {
	*containers.Container
	engine Engine
	id     string
	// Image is the image the scratch was created from.
	Image string
	// Notes say where the scratch differs from the service (another image, mounts left out).
	Notes []string
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// Create creates (and does not start) a scratch copy of spec.From: its image, environment,
// command, user and working directory; a fresh anonymous volume at every volume and
// read-write bind mount, read-only bind mounts kept read-only (configuration files), tmpfs
// kept; network "none"; no published ports, devices, privileges or restart policy; none of
// its labels. What Create made is removed by Remove, on every path.
func Create(ctx context.Context, engine Engine, spec Spec) (*Scratch, error) {
	from := spec.From
	in, err := engine.ContainerInspect(ctx, from.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", from, err)
	}
	cfg := in.Container.Config
	if cfg == nil {
		return nil, fmt.Errorf("%s has no configuration", from)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := &Scratch{engine: engine, id: hex.EncodeToString(b)}

	s.Image = spec.ImageID
	if s.Image == "" {
		s.Image = from.ImageID
	} else if _, err := engine.ImageInspect(ctx, s.Image); err != nil {
		if !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("looking for image %s: %w", s.Image, err)
		}
		s.Notes = append(s.Notes, fmt.Sprintf("the backed-up image %s is no longer on this host: verified with the service's current image %s", short(s.Image), from.Image))
		s.Image = from.ImageID
	}
	lifetime := spec.Lifetime
	if lifetime <= 0 {
		lifetime = 2 * time.Hour
	}
	labels := map[string]string{
		LabelScratch: s.id,
		LabelOwner:   spec.Owner,
		LabelExpires: strconv.FormatInt(time.Now().Add(lifetime).Unix(), 10),
		LabelService: from.Project + "/" + from.Service,
	}

	var mounts []mount.Mount
	for _, m := range in.Container.Mounts {
		dst := path.Clean(m.Destination)
		switch {
		case strings.HasSuffix(dst, ".sock") || dst == "/var/run" || dst == "/run":
			s.Notes = append(s.Notes, "left out the socket mount "+dst)
		case m.Type == mount.TypeVolume || (m.Type == mount.TypeBind && m.RW):
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Target: dst,
				VolumeOptions: &mount.VolumeOptions{Labels: maps.Clone(labels)}})
		case m.Type == mount.TypeBind:
			mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: dst, ReadOnly: true})
		case m.Type == mount.TypeTmpfs:
			mounts = append(mounts, mount.Mount{Type: mount.TypeTmpfs, Target: dst})
		default:
			s.Notes = append(s.Notes, fmt.Sprintf("left out the %s mount %s", m.Type, dst))
		}
	}
	hc := &container.HostConfig{NetworkMode: "none", Mounts: mounts, AutoRemove: false}
	if h := in.Container.HostConfig; h != nil {
		hc.Tmpfs, hc.ShmSize, hc.Init, hc.ReadonlyRootfs = h.Tmpfs, h.ShmSize, h.Init, h.ReadonlyRootfs
		hc.CapAdd, hc.CapDrop, hc.GroupAdd = h.CapAdd, h.CapDrop, h.GroupAdd
	}
	config := &container.Config{
		Image:       s.Image,
		Env:         cfg.Env,
		Cmd:         cfg.Cmd,
		Entrypoint:  cfg.Entrypoint,
		User:        cfg.User,
		WorkingDir:  cfg.WorkingDir,
		StopSignal:  cfg.StopSignal,
		StopTimeout: cfg.StopTimeout,
		Tty:         cfg.Tty,
		Labels:      labels,
	}
	name := "docker-backup-verify-" + strings.Trim(unsafeName.ReplaceAllString(from.Service, "-"), "-.") + "-" + s.id
	created, err := CreateContainer(ctx, engine, client.ContainerCreateOptions{Name: name, Config: config, HostConfig: hc})
	if err != nil {
		s.Container = &containers.Container{ID: name, Name: name}
		_ = s.Remove(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("creating the scratch container for %s: %w", from, err)
	}
	c, err := containers.Inspect(ctx, engine, created.ID)
	if err == nil && from.Task != nil {
		err = copySecrets(ctx, from, c)
	}
	if err != nil {
		s.Container = &containers.Container{ID: created.ID, Name: name}
		_ = s.Remove(context.WithoutCancel(ctx))
		return nil, err
	}
	// Messages name the service the scratch copies.
	c.Project, c.Service = from.Project, from.Service
	s.Container = c
	return s, nil
}

// copySecrets gives the scratch copy of a Swarm task the task's secrets (/run/secrets: a
// database password from POSTGRES_PASSWORD_FILE…). Swarm mounts them outside what the archive
// API sees, so they are read by a tar in the task (the secrets alone, at most 16 MiB); they go
// with the scratch container when it is removed. A task without secrets gives nothing.
func copySecrets(ctx context.Context, from, to *containers.Container) error {
	if !usesSecrets(from) {
		return nil
	}
	var buf bytes.Buffer
	out := &limitedWriter{w: &buf, left: 16 << 20}
	if err := from.Exec(ctx, containers.ExecSpec{Cmd: []string{"tar", "-C", "/run", "-cf", "-", "secrets"}, Stdout: out}); err != nil {
		return fmt.Errorf("reading the swarm secrets of %s (with tar in the container) for its scratch copy: %w", from, err)
	}
	if err := to.CopyTo(ctx, "/run", &buf); err != nil {
		return fmt.Errorf("giving the scratch copy of %s its swarm secrets: %w", from, err)
	}
	return nil
}

// usesSecrets reports whether the container's environment names a file under /run/secrets
// (the *_FILE convention of database images).
func usesSecrets(c *containers.Container) bool {
	for _, kv := range c.Env {
		if _, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(path.Clean(v), "/run/secrets/") {
			return true
		}
	}
	return false
}

// limitedWriter fails once more than left bytes were written.
type limitedWriter struct {
	w    io.Writer
	left int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, errors.New("more than 16 MiB of secrets")
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}

// createTimeout bounds a container's creation, which its caller's context does not cancel.
const createTimeout = 2 * time.Minute

// CreateContainer creates a container without letting ctx cancel the request: the engine
// finishes creating a container whose request was cancelled, after the caller's clean-up has
// looked for it — a sidecar stopped then left a worker, never started (so never removed by
// AutoRemove), holding a scratch volume. When ctx ended meanwhile, the container is removed
// and ctx's error returned.
func CreateContainer(ctx context.Context, engine Engine, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return client.ContainerCreateResult{}, err
	}
	created, err := engine.ContainerCreate(cctx, opts)
	if err == nil && ctx.Err() != nil {
		if _, rerr := engine.ContainerRemove(cctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			return client.ContainerCreateResult{}, fmt.Errorf("%w; removing the container %s created meanwhile: %v", ctx.Err(), opts.Name, rerr)
		}
		return client.ContainerCreateResult{}, ctx.Err()
	}
	return created, err
}

// Sweep removes every scratch container, worker and scratch volume of owner, retrying for a
// few seconds while a volume is still held by a container being removed: what a stopping
// process made, once its operations ended. It says what it could not remove.
func Sweep(ctx context.Context, engine Engine, owner string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	mine := func(labels map[string]string) bool { return labels[LabelOwner] == owner }
	for {
		n, err := Reap(ctx, engine, mine, log)
		left, lerr := leftOf(ctx, engine, owner)
		if err == nil && lerr == nil && left == 0 {
			if n > 0 {
				log.Info("removed the scratch and worker containers of operations the stop ended", "count", n)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, lerr, fmt.Errorf("%d scratch or worker containers or volumes of %s left: the next start removes them", left, owner))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// leftOf counts the containers and volumes labelled with owner.
func leftOf(ctx context.Context, engine Engine, owner string) (int, error) {
	filter := make(client.Filters).Add("label", LabelOwner+"="+owner)
	list, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return 0, err
	}
	vols, err := engine.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return 0, err
	}
	return len(list.Items) + len(vols.Items), nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Start starts the scratch container.
func (s *Scratch) Start(ctx context.Context) error {
	if _, err := s.engine.ContainerStart(ctx, s.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the scratch container %s: %w", s.Name, err)
	}
	return s.Refresh(ctx)
}

// LogTail returns the last lines of the scratch container's output, for an error that says
// why its server did not start ("" when there are none).
func (s *Scratch) LogTail(ctx context.Context, lines int) string {
	rc, err := s.engine.ContainerLogs(ctx, s.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out strings.Builder
	w := &limitWriter{w: &out, n: 4 << 10}
	_, _ = stdcopy.StdCopy(w, w, rc)
	return strings.TrimSpace(out.String())
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// Remove removes the scratch container and its volumes, even when ctx is cancelled.
func (s *Scratch) Remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := s.engine.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && cerrdefs.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("removing the scratch container %s: %w", s.Name, err)
	}
	return errors.Join(err, s.removeVolumes(ctx))
}

func (s *Scratch) removeVolumes(ctx context.Context) error {
	vols, err := s.engine.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", LabelScratch+"="+s.id)})
	if err != nil {
		return fmt.Errorf("listing the scratch volumes: %w", err)
	}
	var errs []error
	for _, v := range vols.Items {
		if _, err := s.engine.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the scratch volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Reap removes the scratch containers and volumes that stale says are no longer anyone's
// (their owner is dead, or they expired), and reports how many containers it removed.
func Reap(ctx context.Context, engine Engine, stale func(labels map[string]string) bool, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	filter := make(client.Filters).Add("label", LabelScratch)
	list, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return 0, fmt.Errorf("listing scratch containers: %w", err)
	}
	var errs []error
	removed := 0
	for _, c := range list.Items {
		if !stale(c.Labels) {
			continue
		}
		if _, err := engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the leftover scratch container %s: %w", c.ID, err))
			continue
		}
		removed++
		log.Info("removed a leftover scratch container", "container", strings.TrimPrefix(first(c.Names), "/"), "owner", c.Labels[LabelOwner])
	}
	vols, err := engine.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("listing scratch volumes: %w", err))...)
	}
	for _, v := range vols.Items {
		if !stale(v.Labels) {
			continue
		}
		// One still in use belongs to a scratch container that is not stale.
		if _, err := engine.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err == nil {
			log.Info("removed a leftover scratch volume", "volume", v.Name)
		}
	}
	return removed, errors.Join(errs...)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
