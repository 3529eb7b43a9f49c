package plan

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// keyOf makes a signing key of a fixed secret: the same key, and key ID, on every run.
func keyOf(t *testing.T, secret string) *artifact.SigningKey {
	t.Helper()
	k, err := artifact.NewSigningKey([]byte(strings.Repeat(secret, 32)[:32]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// shelf is a target holding backups made for a test: each a small artifact and its manifest,
// as a backup leaves them.
type shelf struct {
	t   *testing.T
	dir string
	tgt *target.Local
}

func newShelf(t *testing.T) *shelf {
	t.Helper()
	dir := t.TempDir()
	tgt, err := target.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &shelf{t: t, dir: dir, tgt: tgt}
}

// backup is a backup to put on a shelf.
type backup struct {
	project, service, strategy string
	container                  string        // a container outside compose, when service is empty
	age                        time.Duration // how long before now it was made (negative: in the future)
	by                         *artifact.SigningKey
	// edit changes the manifest before it is signed; tamper, after.
	edit, tamper func(*artifact.Manifest)
}

// put stores b and returns its key.
func (s *shelf) put(b backup) string {
	s.t.Helper()
	if b.strategy == "" {
		b.strategy = "volume"
	}
	at := time.Now().Add(-b.age)
	name, container := b.service, b.project+"-"+b.service+"-1"
	if b.service == "" {
		name, container = b.container, b.container
	}
	k := artifact.Key(artifact.KeyParts{Project: b.project, Service: name, Strategy: b.strategy, Ext: "tar", Compression: artifact.Zstd, At: at})
	body := []byte("compressed bytes")
	ctx := context.Background()
	if _, err := s.tgt.Put(ctx, k, bytes.NewReader(body)); err != nil {
		s.t.Fatal(err)
	}
	m := &artifact.Manifest{FormatVersion: 1, Artifact: k, Strategy: b.strategy, Project: b.project, Service: b.service,
		Container: container, CreatedAt: at.UTC(), Size: int64(len(body)), RawSize: 100,
		SHA256: strings.Repeat("ab", 32), Compression: artifact.Zstd, Source: map[string]string{"paths": "/data"}}
	if b.edit != nil {
		b.edit(m)
	}
	if b.by != nil {
		if err := b.by.Sign(m); err != nil {
			s.t.Fatal(err)
		}
	}
	if b.tamper != nil {
		b.tamper(m)
	}
	raw, err := m.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.tgt.Put(ctx, artifact.ManifestKey(k), bytes.NewReader(raw)); err != nil {
		s.t.Fatal(err)
	}
	return k
}

// inspect is the container nameOrID of the engine, as plan is given it.
func inspect(t *testing.T, e *enginetest.Engine, nameOrID string) *containers.Container {
	t.Helper()
	c, err := containers.Inspect(context.Background(), e, nameOrID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// events is what happened during a test, in order: hooks, stops, starts, the backup.
type events struct {
	mu   sync.Mutex
	list []string
}

func (ev *events) add(s string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.list = append(ev.list, s)
}

func (ev *events) String() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return strings.Join(ev.list, " ")
}

// watch records on ev the engine's stops and starts ("stop NAME", "start NAME") and the
// commands run ("exec WORD"); a command whose first word is in fail exits 1.
func watch(e *enginetest.Engine, ev *events, fail ...string) {
	e.OnCall = func(c enginetest.Call) error {
		switch c.Method {
		case "ContainerStop":
			ev.add("stop " + nameOf(e, c.ID))
		case "ContainerStart":
			ev.add("start " + nameOf(e, c.ID))
		}
		return nil
	}
	e.OnExec = func(x enginetest.Exec) enginetest.ExecResult {
		ev.add("exec " + x.Cmd[0])
		for _, f := range fail {
			if x.Cmd[0] == f {
				return enginetest.ExecResult{Stderr: f + " went wrong\n", ExitCode: 1}
			}
		}
		return enginetest.ExecResult{}
	}
}

func nameOf(e *enginetest.Engine, id string) string {
	c, _ := e.Get(id)
	return c.Name
}

// fakeStrategy backs up a few bytes, or fails, telling ev.
type fakeStrategy struct {
	ev   *events
	fail bool
}

func (f *fakeStrategy) Name() string      { return "volume" }
func (f *fakeStrategy) Extension() string { return "tar" }

func (f *fakeStrategy) Backup(_ context.Context, _ *containers.Container, w io.Writer) (strategy.Source, error) {
	f.ev.add("backup")
	if f.fail {
		return nil, errors.New("dump tool crashed")
	}
	_, err := w.Write([]byte("the data of the service"))
	return strategy.Source{"paths": "/data"}, err
}

func (f *fakeStrategy) Restore(context.Context, *containers.Container, strategy.Data) error {
	return errors.New("not restored in these tests")
}

// refusing is a target that stores nothing: a full disk, a bucket without write access.
type refusing struct{ target.Target }

func (refusing) Put(_ context.Context, _ string, r io.Reader) (int64, error) {
	_, _ = io.Copy(io.Discard, r)
	return 0, errors.New("no space left on device")
}
