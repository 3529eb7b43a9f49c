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
