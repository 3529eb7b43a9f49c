package pipeline

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/errkind"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// fakeStrategy writes data (or fails after failAfter bytes) and records what it restores.
type fakeStrategy struct {
	data      []byte
	failAfter int
	restored  []byte
}

func (f *fakeStrategy) Name() string      { return "fake" }
func (f *fakeStrategy) Extension() string { return "bin" }
func (f *fakeStrategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	if f.failAfter > 0 {
		w.Write(f.data[:f.failAfter])
		return nil, errors.New("dump tool crashed")
	}
	_, err := w.Write(f.data)
	return strategy.Source{"k": "v"}, err
}
func (f *fakeStrategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	b, err := io.ReadAll(data)
	f.restored = b
	return err
}

func setup(t *testing.T) (*containers.Container, *target.Local, string) {
	t.Helper()
	// The fake strategy needs nothing of the engine but the container.
	api := enginetest.New(enginetest.Service("shop", "db", enginetest.WithID("abc"), enginetest.WithImage("example/db:1"), enginetest.Stopped()))
	c, err := containers.Inspect(context.Background(), api, "abc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := target.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c, l, dir
}

func files(t *testing.T, dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestBackupVerifyRestore(t *testing.T) {
	ctx := context.Background()
	c, l, _ := setup(t)
	data := bytes.Repeat([]byte("row,"), 300000)
	s := &fakeStrategy{data: data}
	for _, comp := range []artifact.Compression{artifact.Zstd, artifact.Gzip} {
		res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s, Target: l, Compression: comp})
		if err != nil {
			t.Fatal(err)
		}
		m := res.Manifest
		if m.RawSize != int64(len(data)) || m.Size >= m.RawSize || m.Project != "shop" || m.Service != "db" || m.Image != "example/db:1" || m.Source["k"] != "v" {
			t.Errorf("manifest: %+v", m)
		}
		read, err := listing.ReadManifest(ctx, l, res.Key)
		if err != nil || read.SHA256 != m.SHA256 {
			t.Fatalf("ReadManifest: %v", err)
		}
		if err := Verify(ctx, l, read, nil); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if err := Restore(ctx, RestoreRequest{Target: l, Manifest: read, Container: c, Strategy: s}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.restored, data) {
			t.Errorf("%s: restored %d bytes, want the %d backed up", comp, len(s.restored), len(data))
		}
	}
	found, err := listing.List(ctx, l, "", nil)
	if err != nil || len(found.Backups) != 2 || len(found.Problems) != 0 {
		t.Errorf("List = %+v, %v", found, err)
	}
	if !found.Backups[0].CreatedAt.After(found.Backups[1].CreatedAt) {
		t.Error("List is not newest first")
	}
}

func TestFailedBackupsStoreNothing(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	_, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: nil}, Target: l})
	if !errors.Is(err, ErrEmptyBackup) {
		t.Errorf("empty backup: %v, want ErrEmptyBackup", err)
	}
	_, err = Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: bytes.Repeat([]byte("x"), 1<<20), failAfter: 1 << 19}, Target: l})
	if err == nil || !strings.Contains(err.Error(), "dump tool crashed") {
		t.Errorf("failing strategy: %v", err)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Errorf("failed backups left files: %v", f)
	}
}

func TestCorruptArtifactIsRefusedBeforeRestore(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	s := &fakeStrategy{data: bytes.Repeat([]byte("abc"), 100000)}
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, res.Key)
	good, _ := os.ReadFile(path)
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte{}, good[:10]...), append([]byte{good[10] ^ 0x80}, good[11:]...)...),
		"truncated": good[:len(good)-1],
		"longer":    append(append([]byte{}, good...), 0),
	} {
		os.WriteFile(path, bad, 0o600)
		s.restored = nil
		err := Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: s})
		if !errors.Is(err, artifact.ErrCorrupt) {
			t.Errorf("%s: Restore = %v, want ErrCorrupt", name, err)
		}
		if s.restored != nil {
			t.Errorf("%s: the strategy was called with a corrupt artifact", name)
		}
	}
	// A strategy of another kind is refused.
	os.WriteFile(path, good, 0o600)
	other, _ := strategies.New("volume", strategy.Options{})
	if err := Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: other}); err == nil {
		t.Error("restoring a fake backup with the volume strategy was accepted")
	}
}

func TestListFromAboveThePrefix(t *testing.T) {
	ctx := context.Background()
	c, _, dir := setup(t)
	sub, _ := target.NewLocal(filepath.Join(dir, "host-a"))
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: []byte("data")}, Target: sub})
	if err != nil {
		t.Fatal(err)
	}
	top, _ := target.NewLocal(dir)
	found, err := listing.List(ctx, top, "", nil)
	if err != nil || len(found.Backups) != 1 || len(found.Problems) != 0 {
		t.Fatalf("List = %+v, %v", found, err)
	}
	s := found.Backups[0]
	if s.Key != "host-a/"+res.Key {
		t.Errorf("artifact key %q, want host-a/%s", s.Key, res.Key)
	}
	m, err := listing.ReadManifest(ctx, top, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, top, m, nil); err != nil {
		t.Errorf("Verify from above the prefix: %v", err)
	}
}

func TestListReportsProblems(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	res, _ := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: []byte("data")}, Target: l})
	os.WriteFile(filepath.Join(dir, "shop/db/broken.bin.manifest.json"), []byte("{"), 0o600)
	os.Remove(filepath.Join(dir, res.Key))
	found, err := listing.List(ctx, l, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Backups) != 0 || len(found.Problems) != 2 {
		t.Errorf("List = %d backups, problems %v", len(found.Backups), found.Problems)
	}
}

// newKey is a fresh artifact key of the fake container's service.
func newKey() string {
	return artifact.Key(artifact.KeyParts{Project: "shop", Service: "db", Strategy: "fake", Ext: "bin", Compression: artifact.Zstd, At: time.Now()})
}

// txStrategy is a fake transactional strategy: it "commits" what it read only if its reader
// ended with io.EOF, and its Check can do something to the target between the two reads.
type txStrategy struct {
	fakeStrategy
	onCheck   func()
	checkErr  error
	committed []byte
	checked   bool
}

func (s *txStrategy) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	s.checked = true
	io.Copy(io.Discard, data)
	if s.onCheck != nil {
		s.onCheck()
	}
	return s.checkErr
}

func (s *txStrategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	b, err := io.ReadAll(data) // ReadAll hides io.EOF: err is nil only after it
	if err != nil {
		return err
	}
	s.committed = b
	return nil
}

func TestRestoreAppliesThePinnedBytes(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	data := bytes.Repeat([]byte("original,"), 200000)
	s := &txStrategy{fakeStrategy: fakeStrategy{data: data}}
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, res.Key)
	good, _ := os.ReadFile(path)

	// Replaced (a new file renamed over it) between the verification and the restore: the
	// restore reads the file it verified.
	s.onCheck = func() {
		os.WriteFile(path+".new", bytes.Repeat([]byte("x"), len(good)), 0o600)
		os.Rename(path+".new", path)
	}
	if err := Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: s}); err != nil {
		t.Fatalf("restore of a pinned artifact replaced meanwhile: %v", err)
	}
	if !bytes.Equal(s.committed, data) {
		t.Error("the restore did not apply the verified bytes")
	}

	// Changed in place between the two reads: the restore's reader fails, nothing commits.
	os.WriteFile(path, good, 0o600)
	s.committed = nil
	s.onCheck = func() {
		f, _ := os.OpenFile(path, os.O_WRONLY, 0)
		f.WriteAt([]byte{good[len(good)/2] ^ 1}, int64(len(good)/2))
		f.Close()
	}
	err = Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: s})
	if !errors.Is(err, artifact.ErrCorrupt) || s.committed != nil {
		t.Errorf("bytes changed after verification: err %v, committed %d bytes", err, len(s.committed))
	}

	// A content check that refuses stops the restore before the strategy runs.
	os.WriteFile(path, good, 0o600)
	s.onCheck, s.checkErr = nil, errors.New("not safe")
	err = Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: s})
	if err == nil || !strings.Contains(err.Error(), "untouched") || s.committed != nil {
		t.Errorf("refused by Check: err %v, committed %d bytes", err, len(s.committed))
	}
}

func TestSweepRemovesOnlyOldLeftovers(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: []byte("data")}, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-listing.StaleAfter - time.Hour)
	write := func(name string, at time.Time) string {
		p := filepath.Join(dir, "shop/db", name)
		os.WriteFile(p, []byte("x"), 0o600)
		os.Chtimes(p, at, at)
		return p
	}
	oldTemp := write(".db-x.sql.zst.tmp-abc", old)
	newTemp := write(".db-y.sql.zst.tmp-def", time.Now())
	oldOrphan := write("db-fake-20200101T000000.000Z-00000000.bin.zst", old)
	newOrphan := write("db-fake-20990101T000000.000Z-11111111.bin.zst", time.Now())
	os.Chtimes(filepath.Join(dir, res.Key), old, old) // an old backup with its manifest stays
	removed, err := listing.Sweep(ctx, l, "shop/db/")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %q, want the old temporary file and the old orphan", removed)
	}
	for p, want := range map[string]bool{oldTemp: false, newTemp: true, oldOrphan: false, newOrphan: true, filepath.Join(dir, res.Key): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", p, err == nil, want)
		}
	}
	found, _ := listing.List(ctx, l, "", nil)
	if len(found.Backups) != 1 {
		t.Errorf("the backup is gone: %+v", found)
	}
}

func TestEncryptedBackupRestore(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var recipients crypt.Recipients
	if err := recipients.Add(id.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("secret row,"), 100000)
	s := &txStrategy{fakeStrategy: fakeStrategy{data: data}}
	key := artifact.Key(artifact.KeyParts{Project: "shop", Service: "db", Strategy: "fake", Ext: "bin", Compression: artifact.Zstd, Encrypted: true, At: time.Now()})
	res, err := Backup(ctx, BackupRequest{Container: c, Key: key, Strategy: s, Target: l, Encrypt: &recipients})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if m.Encryption == nil || m.Encryption.Scheme != "age" || m.Encryption.Recipients[0] != id.Recipient().String() || !strings.HasSuffix(key, ".zst.age") {
		t.Fatalf("manifest: %+v, key %s", m.Encryption, key)
	}
	stored, _ := os.ReadFile(filepath.Join(dir, key))
	if bytes.Contains(stored, []byte("secret row")) || !bytes.HasPrefix(stored, []byte("age-encryption.org/v1")) {
		t.Fatal("the artifact is not age ciphertext")
	}
	// The ciphertext's checksum is what the manifest holds: verifying needs no key.
	if err := Verify(ctx, l, m, nil); err != nil {
		t.Fatal(err)
	}
	// Standard tools read it: age, then zstd.
	plain, err := age.Decrypt(bytes.NewReader(stored), id)
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := artifact.Zstd.NewReader(plain)
	got, _ := io.ReadAll(zr)
	if !bytes.Equal(got, data) {
		t.Fatal("age | zstd does not give the data back")
	}
	// No identity, a wrong one: refused before the strategy runs.
	other, _ := age.GenerateX25519Identity()
	var wrong crypt.Identities
	wrongFile := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(wrongFile, []byte(other.String()+"\n"), 0o600)
	wrong.AddFile(wrongFile)
	for name, ids := range map[string]*crypt.Identities{"none": nil, "wrong": &wrong} {
		s.committed, s.checked = nil, false
		err := Restore(ctx, RestoreRequest{Target: l, Manifest: m, Container: c, Strategy: s, Identities: ids})
		if !errors.Is(err, crypt.ErrNoIdentity) || !strings.Contains(err.Error(), "untouched") || s.checked || s.committed != nil {
			t.Errorf("%s identity: %v (checked %v)", name, err, s.checked)
		}
	}
	var right crypt.Identities
	rightFile := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(rightFile, []byte("# created: now\n"+id.String()+"\n"), 0o600)
	if err := right.AddFile(rightFile); err != nil {
		t.Fatal(err)
	}
	if err := Restore(ctx, RestoreRequest{Target: l, Manifest: m, Container: c, Strategy: s, Identities: &right}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.committed, data) {
		t.Error("the decrypted restore differs")
	}
}

// breakingTarget reads n bytes of a Put, then fails it.
type breakingTarget struct {
	target.Target
	n int64
}

func (b *breakingTarget) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if _, err := io.CopyN(io.Discard, r, b.n); err != nil {
		return 0, err
	}
	return 0, errors.New("the disk is full")
}

func (b *breakingTarget) String() string { return "broken" }

func TestBackupToSeveralTargets(t *testing.T) {
	ctx := context.Background()
	c, a, dirA := setup(t)
	_, b, dirB := setup(t)
	data := make([]byte, 8<<20)
	_, _ = crand.Read(data) // incompressible: many writes of compressed bytes
	s := &fakeStrategy{data: data}

	// Two good targets: the same bytes on both, one manifest each.
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s,
		Targets: []Destination{{Name: "a", Target: a}, {Name: "b", Target: b}}})
	if err != nil || strings.Join(res.Stored, ",") != "a,b" {
		t.Fatalf("Backup = %+v, %v", res, err)
	}
	for _, l := range []*target.Local{a, b} {
		m, err := listing.ReadManifest(ctx, l, res.Key)
		if err != nil || m.SHA256 != res.Manifest.SHA256 {
			t.Fatalf("manifest on %s: %v", l, err)
		}
		if err := Verify(ctx, l, m, nil); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}

	// One target breaks in the middle: the backup is stored on the other, the error names
	// the broken one, and it holds nothing.
	broken := &breakingTarget{n: 1 << 20}
	res, err = Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s,
		Targets: []Destination{{Name: "a", Target: a}, {Name: "broken", Target: broken}}})
	var te *TargetsError
	if !errors.As(err, &te) || !errors.Is(err, ErrTarget) || res == nil || strings.Join(res.Stored, ",") != "a" || !strings.Contains(err.Error(), "broken: the disk is full") {
		t.Fatalf("Backup with a broken target = %+v, %v", res, err)
	}
	m, err := listing.ReadManifest(ctx, a, res.Key)
	if err != nil || Verify(ctx, a, m, nil) != nil {
		t.Fatalf("the backup on the good target: %v", err)
	}

	// Every target broken: nothing is stored, the strategy is stopped, the error is the
	// target's.
	before := files(t, dirA)
	_, err = Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s,
		Targets: []Destination{{Name: "x", Target: &breakingTarget{n: 1 << 16}}, {Name: "y", Target: &breakingTarget{n: 1 << 18}}}})
	if err == nil || !strings.Contains(err.Error(), "the disk is full") {
		t.Errorf("every target broken: %v", err)
	}
	if after := files(t, dirA); len(after) != len(before) {
		t.Errorf("files appeared: %v", after)
	}
	_ = dirB
}

// stagingStrategy stages what it reads (the compressed stream) and commits it after staged.
type stagingStrategy struct {
	fakeStrategy
	noRoom    bool
	staged    []byte
	committed bool
	events    []string
}

func (s *stagingStrategy) RestoreStaged(ctx context.Context, c *containers.Container, data strategy.Data, comp artifact.Compression, progress func(int64), staged func(context.Context)) error {
	if s.noRoom {
		io.CopyN(io.Discard, data, 10)
		return fmt.Errorf("/data has 1 B free: %w", strategy.ErrNoRoom)
	}
	zr, err := comp.NewReader(data)
	if err != nil {
		return err
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("%w%w", err, errkind.Silent(strategy.ErrUnapplied))
	}
	s.staged = b
	staged(ctx)
	s.events = append(s.events, "commit")
	s.committed = true
	return nil
}

// TestStagedRestore: a Stager reads the artifact once and commits only once it matched; a
// damaged artifact is refused untouched (never committed); without room to stage, the
// restore takes the two passes.
func TestStagedRestore(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	data := bytes.Repeat([]byte("staged,"), 200000)
	s := &stagingStrategy{fakeStrategy: fakeStrategy{data: data}}
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	req := RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: s,
		Applying: func(context.Context) { s.events = append(s.events, "applying") }}
	if err := Restore(ctx, req); err != nil {
		t.Fatal(err)
	}
	if !s.committed || !bytes.Equal(s.staged, data) || s.restored != nil || fmt.Sprint(s.events) != "[applying commit]" {
		t.Errorf("committed %v, staged %d bytes, two-pass restore called %v, events %v", s.committed, len(s.staged), s.restored != nil, s.events)
	}

	path := filepath.Join(dir, res.Key)
	good, _ := os.ReadFile(path)
	bad := append([]byte{}, good...)
	bad[len(bad)-5] ^= 0x01 // the end: found only after everything was staged
	os.WriteFile(path, bad, 0o600)
	*s = stagingStrategy{fakeStrategy: fakeStrategy{data: data}}
	err = Restore(ctx, req)
	if !errors.Is(err, artifact.ErrCorrupt) || !errors.Is(err, ErrUntouched) || errors.Is(err, ErrStarted) || s.committed || len(s.events) != 0 {
		t.Errorf("damaged: Restore = %v; committed %v, events %v", err, s.committed, s.events)
	}

	os.WriteFile(path, good, 0o600)
	*s = stagingStrategy{fakeStrategy: fakeStrategy{data: data}, noRoom: true}
	if err := Restore(ctx, req); err != nil {
		t.Fatal(err)
	}
	if s.committed || !bytes.Equal(s.restored, data) || fmt.Sprint(s.events) != "[applying]" {
		t.Errorf("no room: committed %v, restored in place %d bytes, events %v", s.committed, len(s.restored), s.events)
	}
}

// packer is a packing strategy (as a worker beside the data): given a new local file, it
// writes the stored stream into it itself and reports its SHA-256 — or, with lie, a size the
// file does not have.
type packer struct {
	fakeStrategy
	lie      bool
	gotFile  bool
	contents *artifact.Contents
}

func (p *packer) BackupPacked(ctx context.Context, c *containers.Container, req strategy.WorkRequest, w io.Writer, progress func(int64)) (strategy.Source, *artifact.Contents, error) {
	var stored bytes.Buffer
	zw, err := req.Compression.NewWriter(&stored)
	if err != nil {
		return nil, nil, err
	}
	zw.Write(p.data)
	zw.Close()
	progress(int64(len(p.data)))
	sink, ok := w.(strategy.FileSink)
	p.gotFile = ok
	if !ok {
		_, err := w.Write(stored.Bytes())
		return strategy.Source{"k": "v"}, p.contents, err
	}
	if _, err := sink.File().Write(stored.Bytes()); err != nil {
		return nil, nil, err
	}
	d := artifact.NewDigest()
	d.Write(stored.Bytes())
	list, _ := d.List()
	size := int64(stored.Len())
	if p.lie {
		size++
	}
	if err := sink.Wrote(size, d.Sum(), list); err != nil {
		return nil, nil, err
	}
	return strategy.Source{"k": "v"}, p.contents, nil
}

func (p *packer) RestorePacked(ctx context.Context, c *containers.Container, data strategy.Data, comp artifact.Compression, progress func(int64)) error {
	return strategy.ErrNoWorker
}

// TestBackupWrittenByTheWorker: a worker that writes a directory target's file itself gives a
// backup whose manifest's SHA-256 is the file's, which restores; one whose report does not
// match the file stores nothing. To an S3-like target (no local files) the bytes come through.
func TestBackupWrittenByTheWorker(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	data := bytes.Repeat([]byte("row,"), 300000)
	p := &packer{fakeStrategy: fakeStrategy{data: data}}
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: p, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(filepath.Join(dir, res.Key))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(stored)
	if !p.gotFile || res.Manifest.SHA256 != hex.EncodeToString(sum[:]) || res.Manifest.Size != int64(len(stored)) || res.Manifest.RawSize != int64(len(data)) {
		t.Errorf("given a file: %v; manifest %+v; the file: %d bytes, sha256 %x", p.gotFile, res.Manifest, len(stored), sum)
	}
	if err := Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: p}); err != nil || !bytes.Equal(p.restored, data) {
		t.Errorf("restore: %v, %d bytes restored", err, len(p.restored))
	}

	c2, l2, dir2 := setup(t)
	_, err = Backup(ctx, BackupRequest{Container: c2, Key: newKey(), Strategy: &packer{fakeStrategy: fakeStrategy{data: data}, lie: true}, Target: l2})
	if err == nil || !strings.Contains(err.Error(), "the worker wrote") {
		t.Errorf("a report that does not match the file: %v", err)
	}
	if f := files(t, dir2); len(f) != 0 {
		t.Errorf("the failed backup left files: %v", f)
	}

	// A target that keeps no local files: the stream comes through the pipeline.
	s3ish := struct{ target.Target }{l2}
	p3 := &packer{fakeStrategy: fakeStrategy{data: data}}
	if _, err := Backup(ctx, BackupRequest{Container: c2, Key: newKey(), Strategy: p3, Target: s3ish}); err != nil || p3.gotFile {
		t.Errorf("to a target without local files: %v, given a file: %v", err, p3.gotFile)
	}
}

// streamer records every byte it is given as it reads, and has a content check (two passes).
type streamer struct {
	fakeStrategy
	got     []byte
	onCheck func()
}

func (s *streamer) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	_, err := io.Copy(io.Discard, data)
	if s.onCheck != nil {
		s.onCheck()
	}
	return err
}

func (s *streamer) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := data.Read(buf)
		s.got = append(s.got, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestChangedBytesNeverReachTheStrategy: an artifact changed in place (dd conv=notrunc) after
// it was verified: the restore reads it chunk by chunk against the signed chunk list, so the
// strategy is given the verified chunks before the change and not one byte after.
func TestChangedBytesNeverReachTheStrategy(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	data := make([]byte, 3*artifact.ChunkSize) // random: stored as it is, a changed byte comes out changed
	crand.Read(data)
	s := &streamer{fakeStrategy: fakeStrategy{data: data}}
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: s, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Chunks == nil || res.Manifest.Chunks.Count != (res.Manifest.Size+artifact.ChunkSize-1)/artifact.ChunkSize {
		t.Fatalf("manifest chunks %+v for %d bytes", res.Manifest.Chunks, res.Manifest.Size)
	}
	path := filepath.Join(dir, res.Key)
	at := int64(artifact.ChunkSize + artifact.ChunkSize/2)
	s.onCheck = func() {
		f, _ := os.OpenFile(path, os.O_WRONLY, 0)
		defer f.Close()
		b := make([]byte, 1)
		f.ReadAt(b, at)
		f.WriteAt([]byte{b[0] ^ 0xff}, at)
	}
	err = Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: s})
	if !errors.Is(err, artifact.ErrCorrupt) || !strings.Contains(err.Error(), "chunk 2") {
		t.Errorf("changed after verification: %v", err)
	}
	if !bytes.HasPrefix(data, s.got) {
		t.Fatalf("the strategy was given %d bytes that are not the backup's", len(s.got))
	}
	if len(s.got) > artifact.ChunkSize {
		t.Errorf("the strategy was given %d bytes, more than the first chunk holds", len(s.got))
	}
}

// oncer is a strategy that can restore from one read (strategy.OnePass): it commits what it
// read only at io.EOF.
type oncer struct {
	fakeStrategy
	committed []byte
	checked   bool
}

func (o *oncer) OnePass(strategy.Data) bool { return true }
func (o *oncer) Interrupted() string        { return "" }
func (o *oncer) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	o.checked = true
	return data.Drain()
}
func (o *oncer) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	o.committed = b
	return nil
}

// counting counts the opens of each key (no Pin: every read opens anew).
type counting struct {
	target.Target
	gets map[string]int
}

func (c *counting) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.gets[key]++
	return c.Target.Get(ctx, key)
}

// TestOnePassRestore: a strategy that commits only at the end is given the artifact in one
// read, each chunk verified; damaged, it commits nothing and says the service is untouched.
func TestOnePassRestore(t *testing.T) {
	ctx := context.Background()
	c, l, dir := setup(t)
	data := make([]byte, 2*artifact.ChunkSize+100)
	crand.Read(data)
	o := &oncer{fakeStrategy: fakeStrategy{data: data}}
	res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: o, Target: l})
	if err != nil {
		t.Fatal(err)
	}
	tgt := &counting{Target: l, gets: map[string]int{}}
	if err := Restore(ctx, RestoreRequest{Target: tgt, Manifest: res.Manifest, Container: c, Strategy: o}); err != nil {
		t.Fatal(err)
	}
	// One open to pin it (it exists), one to read it: no pass to verify it first.
	if !bytes.Equal(o.committed, data) || o.checked || tgt.gets[res.Key] != 2 {
		t.Errorf("committed %d bytes (equal: %v), checked first: %v, opens %d", len(o.committed), bytes.Equal(o.committed, data), o.checked, tgt.gets[res.Key])
	}

	path := filepath.Join(dir, res.Key)
	good, _ := os.ReadFile(path)
	bad := bytes.Clone(good)
	bad[len(bad)-10] ^= 1
	os.WriteFile(path, bad, 0o600)
	o.committed = nil
	err = Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: o})
	if !errors.Is(err, artifact.ErrCorrupt) || !errors.Is(err, ErrUntouched) || o.committed != nil {
		t.Errorf("a damaged last chunk: %v, committed %d bytes", err, len(o.committed))
	}

	// Without its chunk list, or with one that does not match, nothing is read.
	os.WriteFile(path, good, 0o600)
	list := filepath.Join(dir, artifact.ChunksKey(res.Key))
	goodList, _ := os.ReadFile(list)
	for name, change := range map[string]func(){
		"missing": func() { os.Remove(list) },
		"changed": func() { b := bytes.Clone(goodList); b[0] ^= 1; os.WriteFile(list, b, 0o600) },
		"longer":  func() { os.WriteFile(list, append(bytes.Clone(goodList), 0), 0o600) },
	} {
		change()
		err := Restore(ctx, RestoreRequest{Target: l, Manifest: res.Manifest, Container: c, Strategy: o})
		if !errors.Is(err, artifact.ErrCorrupt) || !errors.Is(err, ErrUntouched) || o.committed != nil {
			t.Errorf("chunk list %s: %v", name, err)
		}
		os.WriteFile(list, goodList, 0o600)
	}
}

// writeBackups writes n backups of the fake service straight into dir: each an artifact and a
// manifest padded to about pad bytes.
func writeBackups(t *testing.T, dir string, n, pad int) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "shop/db"), 0o755)
	for i := range n {
		key := fmt.Sprintf("shop/db/db-fake-20260101T000000.000Z-%08x.bin.zst", i)
		m := &artifact.Manifest{FormatVersion: 1, Artifact: key, Strategy: "fake", Project: "shop", Service: "db",
			Container: "shop-db-1", CreatedAt: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Size: 4, SHA256: strings.Repeat("ab", 32),
			Compression: artifact.Zstd, Source: map[string]string{"pad": strings.Repeat("x", pad)}}
		b, _ := m.Marshal()
		os.WriteFile(filepath.Join(dir, key), []byte("data"), 0o600)
		os.WriteFile(filepath.Join(dir, artifact.ManifestKey(key)), b, 0o600)
	}
}

// peakHeap runs f and returns the most heap in use seen meanwhile, above what was in use before.
// The collector runs often meanwhile, so that what is in use follows what is held.
func peakHeap(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(done)
	<-sampled
	return peak - base
}

// TestWalkHoldsFewManifests: listing holds a few manifests at a time, whatever their number:
// manifests of 1.9 MiB (the size limit is 2 MiB) stay within what eight reads at once cost,
// where holding every one cost their sum (60 held 248 MiB).
func TestWalkHoldsFewManifests(t *testing.T) {
	ctx := context.Background()
	peak := map[int]uint64{}
	for _, n := range []int{16, 64} {
		dir := t.TempDir()
		writeBackups(t, dir, n, 1900<<10)
		l, _ := target.NewLocal(dir)
		seen := 0
		peak[n] = peakHeap(func() {
			problems, err := listing.Walk(ctx, l, "", nil, func(artifact.Summary) error { seen++; return nil })
			if err != nil || len(problems) != 0 || seen != n {
				t.Errorf("%d backups: saw %d, problems %v, %v", n, seen, problems, err)
			}
		})
		t.Logf("%d manifests of 1.9 MiB: peak heap %d MiB", n, peak[n]>>20)
	}
	// The bound: eight manifests being read at once, each read (io.ReadAll's growing buffer),
	// decoded and its signature checked (four times its size at most), and some slack; 64 held
	// would be 122 MB. Compared with a bound, not with each other: how many reads overlap is
	// up to the scheduler.
	const bound = 8*4*artifact.MaxManifestSize + 8<<20
	for n, p := range peak {
		if p > bound {
			t.Errorf("walking %d manifests of 1.9 MiB held %d MiB at the peak, more than the %d MiB a listing may", n, p>>20, bound>>20)
		}
	}
}

// TestListManyBackups: walking a listing holds no manifest and no summary once passed on:
// what grows with the number of backups is the target's sorted listing of one directory's
// names (a local directory's; S3 lists in order, a thousand at a time) — well under 512 bytes
// a backup, where a held manifest costs its whole size.
func TestListManyBackups(t *testing.T) {
	ctx := context.Background()
	peak := map[int]uint64{}
	for _, n := range []int{1000, 10000} {
		dir := t.TempDir()
		writeBackups(t, dir, n, 0)
		l, _ := target.NewLocal(dir)
		seen := 0
		peak[n] = peakHeap(func() {
			if _, err := listing.Walk(ctx, l, "", nil, func(artifact.Summary) error { seen++; return nil }); err != nil || seen != n {
				t.Errorf("%d backups: saw %d, %v", n, seen, err)
			}
		})
		t.Logf("walking %d backups: peak heap %d KiB", n, peak[n]>>10)
	}
	if grown := int64(peak[10000]) - int64(peak[1000]); grown > 9000*512 {
		t.Errorf("walking grows with the number of backups: %d KiB for 1000, %d KiB for 10000", peak[1000]>>10, peak[10000]>>10)
	}
}
