package repo

// Red-team tests (issue 32): an attacker with write access to the target, or a power cut.
// Each test states the property it expects; on the code it was written against it FAILS.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/lock"
	"github.com/klauspost/compress/zstd"
)

// repoDir is the repository's directory on disk (newEnv's target is "shop/repo" under it).
func (e *env) repoDir() string { return filepath.Join(e.dir, "repo/shop/repo") }

// indexKeys lists the index files.
func indexKeys(t *testing.T, e *env) []string {
	t.Helper()
	var keys []string
	for o, err := range e.target.List(context.Background(), "index/") {
		must(t, err)
		keys = append(keys, o.Key)
	}
	return keys
}

// forgeIndex stores an index file of an UNENCRYPTED repository (sealing is the identity, the
// compression is public) holding the JSON body, padded until its name sorts before every
// other index file: a target lists keys in order, and the first listing of a pack wins.
func forgeIndex(t *testing.T, e *env, r *Repo, body string) string {
	t.Helper()
	keys := indexKeys(t, e)
	for pad := 0; pad < 1<<16; pad++ {
		b := r.keys.Compress([]byte(body + strings.Repeat(" ", pad)))
		key := "index/" + blob.Sum(b).String()
		first := true
		for _, k := range keys {
			if k <= key {
				first = false
			}
		}
		if !first {
			continue
		}
		_, err := e.target.Put(context.Background(), key, bytes.NewReader(b))
		must(t, err)
		return key
	}
	t.Fatal("no padding made the forged index file sort first")
	return ""
}

// TestRedteamForgedIndexPrunesLivePack: in an unencrypted repository, whoever may Put one
// object (no delete right needed) can make the next prune delete a pack a live snapshot needs:
// an index file listing that pack with no blobs, sorted first, shadows the real listing
// (index.AddPack keeps a pack's first listing), so the pack looks unreferenced; the prune
// never checks that each referenced blob is indexed in an existing pack, deletes the pack, and
// deletes the forged index file with the old ones (no trace left).
func TestRedteamForgedIndexPrunesLivePack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "f"), randomBytes(200<<10, 1))
	r := e.open(nil)
	s, err := backupDir(ctx, r, src, nil)
	must(t, err)
	want, err := export(ctx, r, s)
	must(t, err)

	rd, err := r.NewReader(ctx)
	must(t, err)
	n, err := rd.Lookup(ctx, s.Tree, "f")
	must(t, err)
	loc, _ := rd.Index().Lookup(n.Content[0])
	size, _ := rd.Index().PackSize(loc.Pack)
	forged := forgeIndex(t, e, r, fmt.Sprintf(`{"version":1,"packs":[{"id":%q,"size":%d,"blobs":[]}]}`, loc.Pack, size))

	res, err := r.Prune(ctx)
	t.Logf("prune: %+v, %v", res, err)
	if _, serr := os.Stat(filepath.Join(e.repoDir(), packKey(loc.Pack))); serr != nil {
		t.Errorf("the prune deleted pack %s, which snapshot %s needs (%v)", short(loc.Pack.String()), short(s.ID), serr)
	}
	// Once the forged file is gone (the prune deletes old index files; else by hand), the
	// snapshot must restore as it was.
	if err == nil {
		for _, k := range indexKeys(t, e) {
			b, _ := os.ReadFile(filepath.Join(e.repoDir(), k))
			if bytes.Contains(mustDecompress(t, r, b), []byte(`"blobs":[]`)) {
				must(t, e.target.Delete(ctx, k))
			}
		}
	} else {
		must(t, e.target.Delete(ctx, forged))
	}
	got, err := export(ctx, e.open(nil), s)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("after the prune the live snapshot no longer restores: %v", err)
	}
}

func mustDecompress(t *testing.T, r *Repo, b []byte) []byte {
	t.Helper()
	p, err := r.keys.Decompress(b, 1<<30)
	must(t, err)
	return p
}

// TestRedteamJunkIndexFilePassedOver: one object under index/ that does not decode (Put
// only: junk named by its hash; in an encrypted repository anything not sealed with the key;
// or an index file left truncated by a target without atomic puts) made LoadIndex fail, so
// every restore, backup, check and prune of the repository failed until someone found and
// deleted it, though no snapshot needs it (every blob is verified against its ID anyway).
// Restores and backups now pass over it with a warning.
func TestRedteamJunkIndexFilePassedOver(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		e := newEnv(t, enc)
		src := filepath.Join(e.dir, "src")
		write(t, filepath.Join(src, "f"), randomBytes(10<<10, 3))
		r := e.open(nil)
		s, err := backupDir(ctx, r, src, nil)
		must(t, err)
		junk := []byte("not an index file")
		_, err = e.target.Put(ctx, "index/"+blob.Sum(junk).String(), bytes.NewReader(junk))
		must(t, err)
		if _, err := export(ctx, e.open(nil), s); err != nil {
			t.Errorf("encrypted=%v: a junk index file beside the real ones stops the restore of snapshot %s: %v", enc, short(s.ID), err)
		}
	}
}

// TestRedteamReplayedIndexBlocksPrune: in an ENCRYPTED repository an index file cannot be
// forged, but one the attacker saw can be put back after a prune deleted it (Put only). Its
// packs were rewritten (their live blobs moved) or deleted; the prune then refuses forever
// ("holds referenced blobs but is missing") although every referenced blob is in an existing
// pack, and a restore may take the blob's place in the missing pack (one place is looked up,
// with no fallback). Nothing repairs it but deleting the right index file by hand.
func TestRedteamReplayedIndexBlocksPrune(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(t)
	e := sc.e
	saved := map[string][]byte{}
	for _, k := range indexKeys(t, e) {
		b, err := os.ReadFile(filepath.Join(e.repoDir(), k))
		must(t, err)
		saved[k] = b
	}
	r := e.open(nil)
	res, err := r.Prune(ctx)
	must(t, err)
	if res.RewrittenPacks == 0 {
		t.Fatal("the prune rewrote nothing: the scenario proves nothing")
	}
	sc.verify(t)
	replayed := 0
	for k, b := range saved {
		if _, err := e.target.Put(ctx, k, bytes.NewReader(b)); err == nil {
			replayed++
		}
	}
	if replayed == 0 {
		t.Fatal("no index file was deleted by the prune")
	}
	if _, err := r.Prune(ctx); err != nil {
		t.Errorf("after %d old index files were put back, prune fails: %v", replayed, err)
	}
	for _, s := range sc.snaps {
		if _, err := export(ctx, e.open(nil), s); err != nil {
			t.Errorf("after old index files were put back, snapshot %s does not restore: %v", short(s.ID), err)
		}
	}
}

// TestRedteamSnapshotBomb: in an unencrypted repository a Put of one small object under
// snapshots/ (a zstd "bomb": 128 MiB of zeros in a few KiB) makes every reader of the
// snapshots (listing, latest, retention, prune, check) decompress it whole before
// snapshot.MaxSize (16 MiB) is checked: memory grows with the bomb (up to the decoder's 1 GiB
// per object). The same holds for index files (index.MaxFile) and blobs (the raw length is
// checked after decoding).
func TestRedteamSnapshotBomb(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	r := e.open(nil)
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	must(t, err)
	zero := make([]byte, 1<<20)
	for range 512 { // 512 MiB decompressed: far beyond what a bounded read allocates
		_, err := zw.Write(zero)
		must(t, err)
	}
	must(t, zw.Close())
	id := blob.Sum(buf.Bytes()).String()
	_, err = e.target.Put(ctx, "snapshots/"+id, bytes.NewReader(buf.Bytes()))
	must(t, err)
	t.Logf("bomb: %d bytes stored", buf.Len())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = r.Snapshots(ctx)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("the bomb was accepted as a snapshot")
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("listing the snapshots allocated %d MiB: %v", alloc>>20, err)
	// Reading to the 16 MiB limit allocates about 55 MiB (the buffer's growth, the decoder's
	// window), more under -race (sync.Pool keeps fewer buffers): 105 MiB was seen.
	if alloc > 192<<20 {
		t.Errorf("listing the snapshots allocated %d MiB for a %d-byte object (limit %d MiB): decompressed before the limit", alloc>>20, buf.Len(), 16)
	}
}

// TestRedteamFutureLockNeverStale: a lock object whose "refreshed" is in the future (forged
// with Put only, or left by a host whose clock was wrong when it crashed) is never stale: the
// later of "refreshed" and the object's modification time is taken, so an exclusive one blocks
// every backup for ever and RemoveStaleLocks(false) does not remove it.
func TestRedteamFutureLockNeverStale(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := json.Marshal(lock.Info{Host: "evil", PID: 1, Kind: lock.Exclusive, Created: future, Refreshed: future})
	must(t, err)
	_, err = e.target.Put(ctx, "locks/00000000000000000000000000000000", bytes.NewReader(b))
	must(t, err)
	// An hour later (by this host's clock and the object's time), nobody refreshed it.
	r := e.open(func(a *Access) { a.Now = func() time.Time { return time.Now().Add(time.Hour) } })
	n, err := r.RemoveStaleLocks(ctx, false)
	must(t, err)
	if n != 1 {
		t.Errorf("RemoveStaleLocks removed %d locks, want the one written an hour ago and never refreshed", n)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Errorf("a backup an hour after a lock was written and never refreshed: %v", err)
	} else {
		w.Abort(ctx)
	}
}

// TestRedteamPutExistingPack: a pack's key exists already, so the writer takes it as
// stored (put with same=true trusts ErrExist) without looking at what is there. Packs of an
// unencrypted repository are deterministic (no nonce): a pack a prune deleted is named again
// when the same data is backed up again. An attacker who put garbage under that name (Put
// only; the name was public) makes the next backup commit a snapshot that cannot be restored,
// and the backup reports success.
func TestRedteamPutExistingPack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "f"), randomBytes(200<<10, 2))
	r := e.open(nil)
	s1, err := backupDir(ctx, r, src, nil)
	must(t, err)
	rd, err := r.NewReader(ctx)
	must(t, err)
	n, err := rd.Lookup(ctx, s1.Tree, "f")
	must(t, err)
	loc, _ := rd.Index().Lookup(n.Content[0])
	size, _ := rd.Index().PackSize(loc.Pack)
	must(t, r.Forget(ctx, s1.ID))
	_, err = r.Prune(ctx)
	must(t, err)
	// The attacker puts garbage of the same size where the pack was (Check(0) sees nothing).
	garbage := bytes.Repeat([]byte{'x'}, int(size))
	_, err = e.target.Put(ctx, packKey(loc.Pack), bytes.NewReader(garbage))
	must(t, err)

	s2, err := backupDir(ctx, r, src, nil)
	if err != nil {
		return // refused: fine
	}
	if _, err := export(ctx, r, s2); err != nil {
		t.Errorf("the backup reported success, but its snapshot %s does not restore: %v", short(s2.ID), err)
	}
}

// TestRedteamStalledPruneDeletesAfterStale: a prune checks that its lock is still valid once,
// before it writes its new index; then it deletes the old index files and the packs without
// looking again. A prune process stalled there for longer than lock.Stale (a laptop asleep
// during `docker backup prune`, a VM paused, SIGSTOP) has a stale lock: a backup starts beside
// it, loads the index (the old files still list the packs about to go), deduplicates against a
// blob in one of them and commits. The prune resumes, deletes that pack: the new snapshot is
// broken, though the backup held a valid lock throughout.
func TestRedteamStalledPruneDeletesAfterStale(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	// The new backup holds x again: the forgotten snapshot's data, garbage to the prune.
	bsrc := filepath.Join(sc.e.dir, "bsrc")
	write(t, filepath.Join(bsrc, "x"), randomBytes(3<<20, 10))
	var during *Snapshot
	var berr error
	pr := sc.e.open(func(a *Access) {
		a.Now = clock
		a.Hook = func(ctx context.Context, point string) error {
			if point != "prune.index-written" || during != nil || berr != nil {
				return nil
			}
			advance(lock.Stale + time.Minute) // the prune stalls here
			during, berr = backupDir(ctx, sc.e.open(func(a *Access) { a.Now = clock }), bsrc, nil)
			return nil
		}
	})
	_, perr := pr.Prune(ctx)
	if berr != nil || during == nil {
		t.Fatalf("no backup ran beside the stalled prune: %v", berr)
	}
	t.Logf("prune after its stall: %v", perr)
	if _, err := export(ctx, sc.e.open(nil), during); err != nil {
		t.Errorf("snapshot %s, committed under a valid lock while the prune was stalled, is broken by the prune: %v", short(during.ID), err)
	}
}

// TestRedteamPlainPruneCrashThenPrune: no attacker, a power cut. In an UNENCRYPTED repository a
// prune's rewrite is deterministic (no nonce in the header): a prune that crashed after
// uploading its rewritten packs (before its index) left pack P' unindexed; the next prune
// plans to delete P' (unindexed garbage), rewrites the same blobs into the same bytes, so the
// same P' (its put finds it there: fine), indexes P' and then deletes it with the garbage.
// The live snapshot's blobs were only in P' (the old pack was rewritten and deleted).
// (TestCrashEveryStep runs only encrypted repositories, whose packs never repeat.)
func TestRedteamPlainPruneCrashThenPrune(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	src := filepath.Join(e.dir, "src")
	for i := range 20 { // one data pack (800 KiB of 1 MiB), 4 of its 20 files kept: rewritten
		write(t, filepath.Join(src, fmt.Sprintf("small/%02d", i)), randomBytes(40<<10, uint64(100+i)))
	}
	r := e.open(nil)
	s0, err := backupDir(ctx, r, src, nil)
	must(t, err)
	for i := range 16 {
		must(t, os.Remove(filepath.Join(src, fmt.Sprintf("small/%02d", i))))
	}
	s1, err := backupDir(ctx, r, src, nil)
	must(t, err)
	want, err := export(ctx, r, s1)
	must(t, err)
	must(t, r.Forget(ctx, s0.ID))

	crashing := e.open(func(a *Access) {
		a.Hook = func(ctx context.Context, point string) error {
			if point == "prune.rewritten" {
				return fmt.Errorf("power cut")
			}
			return nil
		}
	})
	if _, err := crashing.Prune(ctx); err == nil {
		t.Fatal("the crashing prune finished")
	} else {
		t.Logf("the crashing prune: %v", err)
	}
	res, err := e.open(nil).Prune(ctx)
	t.Logf("the next prune: %+v, %v", res, err)
	got, err := export(ctx, e.open(nil), s1)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("after a prune crashed and the next one ran, the live snapshot %s does not restore: %v", short(s1.ID), err)
	}
	if _, err := e.open(nil).Check(ctx, 1); err != nil {
		t.Errorf("check: %v", err)
	}
}

// TestRedteamForgedDedupEntry: an unencrypted repository's chunk-ID key is in its config,
// readable by whoever reads the target, so blob IDs of content one can guess (a default
// config file, an empty database's dump) can be computed. An index file (Put only) listing such
// an ID in a pack of junk, the size it claims, makes every later backup of that content
// deduplicate against it and upload nothing: the backup reports success, Check(0) passes, and
// the snapshot never restored. Index files are signed now: the forged one is passed over.
func TestRedteamForgedDedupEntry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	r := e.open(nil)
	known := randomBytes(50<<10, 4) // content the attacker can guess
	id := r.keys.BlobID(known)
	junk := bytes.Repeat([]byte{'j'}, 1000)
	q := blob.Sum(junk)
	_, err := e.target.Put(ctx, packKey(q), bytes.NewReader(junk))
	must(t, err)
	forgeIndex(t, e, r, fmt.Sprintf(`{"version":1,"packs":[{"id":%q,"size":1000,"blobs":[{"id":%q,"type":"data","comp":0,"offset":0,"length":1000,"raw_length":%d}]}]}`, q, id, len(known)))

	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "guessable"), known)
	s, err := backupDir(ctx, r, src, nil)
	if err != nil {
		return // refused: fine
	}
	_, cerr := r.Check(ctx, 0)
	if _, err := export(ctx, r, s); err != nil {
		t.Errorf("the backup reported success (check without reading data: %v), but snapshot %s does not restore: %v", cerr, short(s.ID), err)
	}
}

// TestRedteamJunkNameShadowsShortID: snapshots are named to people by 12 hex digits
// (snapshot:SHORTID) and LoadSnapshot resolves a prefix among every name under snapshots/,
// hashes or not. One object put there (Put only, any content, encrypted or not) named
// SHORTID followed by anything makes the prefix ambiguous: the restore by the name every
// listing shows is refused.
func TestRedteamJunkNameShadowsShortID(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "f"), []byte("x"))
	r := e.open(nil)
	s, err := backupDir(ctx, r, src, nil)
	must(t, err)
	_, err = e.target.Put(ctx, "snapshots/"+s.ID[:12]+"-junk", strings.NewReader("junk"))
	must(t, err)
	if _, err := r.LoadSnapshot(ctx, s.ID[:12]); err != nil {
		t.Errorf("snapshot:%s no longer resolves: %v", s.ID[:12], err)
	}
	// Named like an ID (64 hex digits), with junk content: still not a snapshot.
	_, err = e.target.Put(ctx, "snapshots/"+s.ID[:12]+strings.Repeat("0", 52), strings.NewReader("junk"))
	must(t, err)
	if _, err := r.LoadSnapshot(ctx, s.ID[:12]); err != nil {
		t.Errorf("snapshot:%s no longer resolves beside junk named like an ID: %v", s.ID[:12], err)
	}
	must(t, r.Forget(ctx, s.ID[:12]+strings.Repeat("0", 52)))
	// Nor can such a name stop every prune (a snapshot that cannot be read stops it) while
	// Forget refuses it (not an ID).
	if _, err := r.Prune(ctx); err != nil {
		t.Errorf("an object named %s-junk under snapshots/ stops the prune: %v", s.ID[:12], err)
	}
}

// TestRedteamBlobBomb: a restore does not hash packs (it checks each blob's ID), and checks a
// blob's raw length and ID only after decompressing it whole (DecodeAll, up to the decoder's
// 1 GiB). Whoever may overwrite a pack of an unencrypted repository (same size, so the size
// check passes) puts a zstd bomb where a compressed blob was: each blob read costs up to
// 1 GiB (a restore decodes 3 at once) before it is refused.
func TestRedteamBlobBomb(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	src := filepath.Join(e.dir, "src")
	text := make([]byte, 0, 300<<10)
	for _, b := range randomBytes(150<<10, 7) {
		text = fmt.Appendf(text, "%02x", b) // compresses to about half
	}
	write(t, filepath.Join(src, "f"), text)
	r := e.open(nil)
	s, err := backupDir(ctx, r, src, nil)
	must(t, err)
	rd, err := r.NewReader(ctx)
	must(t, err)
	n, err := rd.Lookup(ctx, s.Tree, "f")
	must(t, err)
	loc, _ := rd.Index().Lookup(n.Content[0])
	if loc.Entry.Comp != blob.Zstd {
		t.Fatal("the blob is not compressed: the test proves nothing")
	}
	var bomb bytes.Buffer
	zw, err := zstd.NewWriter(&bomb, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	must(t, err)
	zero := make([]byte, 1<<20)
	for range 256 {
		_, err := zw.Write(zero)
		must(t, err)
	}
	must(t, zw.Close())
	pad := int(loc.Entry.Length) - bomb.Len() - 8
	if pad < 0 {
		t.Fatalf("the bomb (%d bytes) does not fit the blob's %d", bomb.Len(), loc.Entry.Length)
	}
	bomb.Write([]byte{0x50, 0x2a, 0x4d, 0x18, byte(pad), byte(pad >> 8), byte(pad >> 16), byte(pad >> 24)}) // a skippable frame
	bomb.Write(make([]byte, pad))
	p := filepath.Join(e.repoDir(), packKey(loc.Pack))
	b, err := os.ReadFile(p)
	must(t, err)
	copy(b[loc.Entry.Offset:], bomb.Bytes())
	must(t, os.Remove(p))
	must(t, os.WriteFile(p, b, 0o600))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = export(ctx, e.open(nil), s)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("the bomb was restored")
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("the restore allocated %d MiB: %v", alloc>>20, err)
	if alloc > 64<<20 {
		t.Errorf("restoring a %d-byte blob (raw %d) allocated %d MiB before refusing it", loc.Entry.Length, loc.Entry.Raw, alloc>>20)
	}
}
