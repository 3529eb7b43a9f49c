package artifact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func validManifest() *Manifest {
	return &Manifest{FormatVersion: 1, Artifact: "p/s/x.sql.zst", Strategy: "postgres",
		SHA256: strings.Repeat("ab", 32), Size: 10, Compression: Zstd}
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	m.Source = map[string]string{"database": "app"}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Artifact != m.Artifact || got.Source["database"] != "app" || got.Compression != Zstd {
		t.Errorf("round trip changed the manifest: %+v", got)
	}
}

func TestManifestValidate(t *testing.T) {
	cases := map[string]func(*Manifest){
		"future format": func(m *Manifest) { m.FormatVersion = FormatVersion + 1 },
		"chunk count":   func(m *Manifest) { m.Chunks = &Chunks{Size: ChunkSize, Count: 2, SHA256: strings.Repeat("ab", 32)} },
		"chunk size":    func(m *Manifest) { m.Chunks = &Chunks{Size: 1 << 30, Count: 1, SHA256: strings.Repeat("ab", 32)} },
		"chunk sha":     func(m *Manifest) { m.Chunks = &Chunks{Size: ChunkSize, Count: 1, SHA256: "x"} },
		"no artifact":   func(m *Manifest) { m.Artifact = "" },
		"no strategy":   func(m *Manifest) { m.Strategy = "" },
		"short sha":     func(m *Manifest) { m.SHA256 = "abc" },
		"uppercase sha": func(m *Manifest) { m.SHA256 = strings.Repeat("AB", 32) },
		"zero size":     func(m *Manifest) { m.Size = 0 },
		"unknown codec": func(m *Manifest) { m.Compression = "lz4" },
		"encrypted":     func(m *Manifest) { m.Encryption = &Encryption{Scheme: "gpg"} },
		"padded job":    func(m *Manifest) { m.Job = strings.Repeat("j", 256) },
		"padded key id": func(m *Manifest) { m.Signature = &Signature{Scheme: SchemeEd25519, KeyID: strings.Repeat("k", 65)} },
		"escape":        func(m *Manifest) { m.Strategy = "fake\x1b]52;c;aGk=\x07" },
		"C1 control":    func(m *Manifest) { m.Container = "c\u009b2J" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := validManifest()
			mutate(m)
			if err := m.Validate(); err == nil {
				t.Errorf("Validate accepted %+v", m)
			}
		})
	}
	if err := validManifest().Validate(); err != nil {
		t.Errorf("valid manifest refused: %v", err)
	}
	if _, err := Unmarshal([]byte("{not json")); err == nil {
		t.Error("Unmarshal accepted broken JSON")
	}
}

func TestKey(t *testing.T) {
	at := time.Date(2026, 11, 25, 2, 0, 0, 123e6, time.FixedZone("X", 3600))
	cases := []struct{ project, service, job, want string }{
		{"shop", "db", "", `^shop/db/db-postgres-20261125T010000\.123Z-[0-9a-f]{8}\.sql\.zst$`},
		{"shop", "db", "nightly", `^shop/db/db-nightly-postgres-20261125T010000\.123Z-[0-9a-f]{8}\.sql\.zst$`},
		{"", "mycontainer", "", `^standalone/mycontainer/mycontainer-postgres-20261125T010000\.123Z-[0-9a-f]{8}\.sql\.zst$`},
		{"p", "../etc", "", `^p/_etc/_etc-postgres-`},
		{"p", "a/b", "", `^p/a_b/a_b-postgres-`},
		{"p", "dätä", "", `^p/dätä/dätä-postgres-`},
	}
	for _, c := range cases {
		got := Key(KeyParts{Project: c.project, Service: c.service, Job: c.job, Strategy: "postgres", Ext: "sql", Compression: Zstd, At: at})
		if !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("Key(%q, %q, %q) = %q, want %s", c.project, c.service, c.job, got, c.want)
		}
	}
	// Two backups of the same service and job in the same millisecond do not collide.
	k := KeyParts{Project: "p", Service: "s", Strategy: "volume", Ext: "tar", Compression: Gzip, At: at}
	if a, b := Key(k), Key(k); a == b || !strings.HasSuffix(a, ".tar.gz") {
		t.Errorf("keys %q and %q", a, b)
	}
}

func TestCheckKey(t *testing.T) {
	m := &Manifest{Project: "shop", Service: "db"}
	for key, ok := range map[string]bool{"shop/db/x.sql.zst": true, "host-a/shop/db/x.sql.zst": true,
		"shop/files/x.sql.zst": false, "other/db/x.sql.zst": false, "shop/db/sub/x": false, "x": false} {
		if err := m.CheckKey(key); (err == nil) != ok {
			t.Errorf("CheckKey(%q) = %v", key, err)
		}
	}
}

func TestSignatures(t *testing.T) {
	k, _ := NewSigningKey([]byte(strings.Repeat("k", 32)))
	other, _ := NewSigningKey([]byte(strings.Repeat("o", 32)))
	if _, err := NewSigningKey([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
	m := validManifest()
	m.Source = map[string]string{"paths": "/data"}
	if err := k.Sign(m); err != nil {
		t.Fatal(err)
	}
	b, _ := m.Marshal()
	read, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewKeyring(k).Verify(read); err != nil {
		t.Errorf("a signed manifest read back: %v", err)
	}
	if err := NewKeyring(other).Verify(read); !errors.Is(err, ErrOtherKey) {
		t.Errorf("verified with another key: %v", err)
	}
	// White space and member order do not matter; content does.
	var generic map[string]any
	json.Unmarshal(b, &generic)
	compact, _ := json.Marshal(generic)
	if again, _ := Unmarshal(compact); NewKeyring(k).Verify(again) != nil {
		t.Error("the same manifest, compacted, does not verify")
	}
	for name, forge := range map[string]func(string) string{
		"paths":       func(s string) string { return strings.Replace(s, `"/data"`, `"/usr/local/bin"`, 1) },
		"strategy":    func(s string) string { return strings.Replace(s, `"postgres"`, `"volume"`, 1) },
		"added field": func(s string) string { return strings.Replace(s, `"strategy"`, `"extra": 1, "strategy"`, 1) },
	} {
		forged, err := Unmarshal([]byte(forge(string(b))))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := NewKeyring(k).Verify(forged); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: forged manifest verified: %v", name, err)
		}
	}
	m.Signature = nil
	b, _ = m.Marshal()
	unsigned, _ := Unmarshal(b)
	if err := NewKeyring(k).Verify(unsigned); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	if _, err := Unmarshal(append(b[:len(b)-2], []byte(`, "pad": "`+strings.Repeat("x", MaxManifestSize)+`"}`)...)); err == nil {
		t.Error("a huge manifest was read")
	}
}

// A host given only the public key verifies what the signing host made, and cannot sign.
func TestPublicKeyVerifiesWithoutTheSecret(t *testing.T) {
	k, _ := NewSigningKey([]byte(strings.Repeat("k", 32)))
	m := validManifest()
	if err := k.Sign(m); err != nil {
		t.Fatal(err)
	}
	if m.Signature.Scheme != SchemeEd25519 || m.Signature.KeyID != k.ID() {
		t.Fatalf("signature %+v", m.Signature)
	}
	b, _ := m.Marshal()
	read, _ := Unmarshal(b)
	line := k.Public().String() + " backup host"
	pub, err := ParsePublicKey(line)
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID() != k.ID() {
		t.Errorf("public key ID %s, signing key ID %s", pub.ID(), k.ID())
	}
	if err := NewKeyring(nil, pub).Verify(read); err != nil {
		t.Errorf("verified with the public key alone: %v", err)
	}
	if err := NewKeyring(nil).Verify(read); !errors.Is(err, ErrOtherKey) {
		t.Errorf("an empty keyring: %v", err)
	}
	var none *Keyring
	if err := none.Verify(read); !errors.Is(err, ErrOtherKey) {
		t.Errorf("a nil keyring: %v", err)
	}
	// The same key ID with another key (a forger who names the trusted key's ID).
	forger, _ := NewSigningKey([]byte(strings.Repeat("f", 32)))
	forged := validManifest()
	forger.Sign(forged)
	forged.Signature.KeyID = k.ID()
	fb, _ := forged.Marshal()
	fread, _ := Unmarshal(fb)
	if err := NewKeyring(nil, pub).Verify(fread); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a signature by another key under the trusted ID: %v", err)
	}
	for _, bad := range []string{"", "ssh-ed25519 AAAA", PublicKeyType + " !!!", PublicKeyType + " AAAA"} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted it", bad)
		}
	}
	keys, err := ParsePublicKeys("# mine\n\n"+line+"\n", "test")
	if err != nil || len(keys) != 1 {
		t.Errorf("ParsePublicKeys = %v, %v", keys, err)
	}
	if _, err := ParsePublicKeys("garbage\n", "test"); err == nil || !strings.Contains(err.Error(), "test line 1") {
		t.Errorf("a bad line: %v", err)
	}
}

// Manifests signed with HMAC before Ed25519 keep verifying with the key file that made them,
// and only with it.
func TestHMACManifestsStillVerify(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	k, _ := NewSigningKey(secret)
	m := validManifest()
	m.FormatVersion = 1
	b, _ := json.Marshal(m)
	c, err := canonicalize(b)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("docker-backup manifest v1\x00"))
	mac.Write(c)
	idSum := sha256.Sum256(append([]byte("docker-backup signing key id\x00"), secret...))
	m.Signature = &Signature{Scheme: SchemeHMAC, KeyID: hex.EncodeToString(idSum[:8]), Value: hex.EncodeToString(mac.Sum(nil))}
	signed, _ := m.Marshal()
	read, err := Unmarshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewKeyring(k).Verify(read); err != nil {
		t.Errorf("an HMAC manifest with its own key: %v", err)
	}
	if err := NewKeyring(nil, k.Public()).Verify(read); !errors.Is(err, ErrOtherKey) {
		t.Errorf("an HMAC manifest with the public key only: %v", err)
	}
	tampered, _ := Unmarshal([]byte(strings.Replace(string(signed), `"postgres"`, `"volume"`, 1)))
	if err := NewKeyring(k).Verify(tampered); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a changed HMAC manifest: %v", err)
	}
}

func TestDigestChunks(t *testing.T) {
	data := make([]byte, 2*ChunkSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	d := NewDigest()
	// Written in odd pieces: the chunks do not depend on how the stream was cut.
	for p := data; len(p) > 0; {
		n := min(len(p), 1<<20+17)
		d.Write(p[:n])
		p = p[n:]
	}
	list, c := d.List()
	if c.Count != 3 || len(list) != 3*sha256.Size || c.Size != ChunkSize {
		t.Fatalf("chunks %+v, list %d bytes", c, len(list))
	}
	for i := range 3 {
		end := min((i+1)*ChunkSize, len(data))
		want := sha256.Sum256(data[i*ChunkSize : end])
		if !bytes.Equal(list[i*sha256.Size:(i+1)*sha256.Size], want[:]) {
			t.Errorf("chunk %d sum differs", i)
		}
	}
	whole := sha256.Sum256(data)
	if !bytes.Equal(d.Sum(), whole[:]) {
		t.Error("the whole sum differs")
	}
	if err := c.CheckList(list); err != nil {
		t.Error(err)
	}
	if err := c.CheckList(list[:len(list)-1]); err == nil {
		t.Error("a truncated list passed")
	}
	bad := bytes.Clone(list)
	bad[5] ^= 1
	if err := c.CheckList(bad); err == nil {
		t.Error("a changed list passed")
	}
	if err := c.validate(int64(len(data))); err != nil {
		t.Error(err)
	}
	if err := c.validate(int64(len(data)) + ChunkSize); err == nil {
		t.Error("a chunk count that does not fit the size passed")
	}
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dir", "signing.key")
	k, created, err := LoadOrCreateSigningKey(file)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	info, _ := os.Stat(file)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
	again, created, err := LoadOrCreateSigningKey(file)
	if err != nil || created || again.ID() != k.ID() {
		t.Errorf("load: %v %v %v", again, created, err)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("docker-backup "), 100000)
	for _, c := range []Compression{Zstd, Gzip} {
		var buf bytes.Buffer
		w, err := c.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.Len() >= len(data)/10 {
			t.Errorf("%s did not compress: %d bytes", c, buf.Len())
		}
		r, err := c.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s round trip: err %v, equal %v", c, err, bytes.Equal(got, data))
		}
	}
	if _, err := ParseCompression("xz"); err == nil || !strings.Contains(err.Error(), "zstd or gzip") {
		t.Errorf("ParseCompression(xz) = %v", err)
	}
}

func TestParallelZstd(t *testing.T) {
	// Sizes around the chunk boundary, written in odd pieces; the output must be one valid
	// zstd stream holding exactly the input, also for empty input.
	for _, size := range []int{0, 1, zstdChunk - 1, zstdChunk, zstdChunk + 1, 3*zstdChunk + 12345} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i/1000)
		}
		var buf bytes.Buffer
		w, err := Zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 100000+len(rest)%777)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("x")); err == nil {
			t.Error("write after Close accepted")
		}
		r, _ := Zstd.NewReader(bytes.NewReader(buf.Bytes()))
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: err %v, equal %v (got %d bytes)", size, err, bytes.Equal(got, data), len(got))
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrClosedPipe
	}
	f.n--
	return len(p), nil
}

func TestParallelZstdReportsWriteErrors(t *testing.T) {
	w, _ := Zstd.NewWriter(&failWriter{n: 1})
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, zstdChunk)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = w.Write(data)
	}
	if cerr := w.Close(); err == nil && cerr == nil {
		t.Error("a failing destination was not reported")
	}
}
