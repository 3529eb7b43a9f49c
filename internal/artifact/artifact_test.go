package artifact

import (
	"bytes"
	"io"
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
		"future format": func(m *Manifest) { m.FormatVersion = 2 },
		"no artifact":   func(m *Manifest) { m.Artifact = "" },
		"no strategy":   func(m *Manifest) { m.Strategy = "" },
		"short sha":     func(m *Manifest) { m.SHA256 = "abc" },
		"uppercase sha": func(m *Manifest) { m.SHA256 = strings.Repeat("AB", 32) },
		"zero size":     func(m *Manifest) { m.Size = 0 },
		"unknown codec": func(m *Manifest) { m.Compression = "lz4" },
		"encrypted":     func(m *Manifest) { m.Encryption = &Encryption{Scheme: "age"} },
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
	cases := []struct{ project, service, want string }{
		{"shop", "db", "shop/db/db-postgres-20261125T010000.123Z.sql.zst"},
		{"", "mycontainer", "standalone/mycontainer/mycontainer-postgres-20261125T010000.123Z.sql.zst"},
		{"p", "../etc", "p/_etc/_etc-postgres-20261125T010000.123Z.sql.zst"},
		{"p", "a/b", "p/a_b/a_b-postgres-20261125T010000.123Z.sql.zst"},
		{"p", "dätä", "p/dätä/dätä-postgres-20261125T010000.123Z.sql.zst"},
	}
	for _, c := range cases {
		if got := Key(c.project, c.service, "postgres", "sql", Zstd, at); got != c.want {
			t.Errorf("Key(%q, %q) = %q, want %q", c.project, c.service, got, c.want)
		}
	}
	if got := Key("p", "s", "volume", "tar", Gzip, at); !strings.HasSuffix(got, ".tar.gz") {
		t.Errorf("gzip key %q", got)
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
