package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/target"
)

// writeTestBackup stores a small artifact and its manifest as a backup would, signed with
// key (nil: unsigned), and returns its key.
func writeTestBackup(t *testing.T, dir, project, service string, key *artifact.SigningKey, mutate ...func(*artifact.Manifest)) string {
	t.Helper()
	tgt, err := target.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := artifact.Key(artifact.KeyParts{Project: project, Service: service, Strategy: "postgres", Ext: "sql", Compression: artifact.Zstd, At: testNow.Add(-time.Hour)})
	body := []byte("compressed bytes")
	if _, err := tgt.Put(ctx, k, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	m := &artifact.Manifest{FormatVersion: 1, Artifact: k, Strategy: "postgres", Project: project, Service: service, Container: project + "-" + service + "-1",
		CreatedAt: testNow.Add(-time.Hour), Size: int64(len(body)), RawSize: 100, SHA256: strings.Repeat("ab", 32), Compression: artifact.Zstd}
	for _, f := range mutate {
		f(m)
	}
	if key != nil {
		if err := key.Sign(m); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := m.Marshal()
	if _, err := tgt.Put(ctx, artifact.ManifestKey(k), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLsFormatsAndNotes(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	dir := t.TempDir()
	cli := newFakeCli(nil)
	if err := cli.run(t, "ls", "--from", dir, "--format", "yaml"); err == nil || !strings.Contains(err.Error(), `unknown --format "yaml": use table or json`) {
		t.Errorf("bad format: %v", err)
	}
	if err := cli.run(t, "ls", "--from", dir+"/missing"); err == nil || !strings.Contains(err.Error(), "backup directory") {
		t.Errorf("missing directory: %v", err)
	}
	mine, err := keys.Signer(&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	signed := writeTestBackup(t, dir, "shop", "db", mine)
	unsigned := writeTestBackup(t, dir, "shop", "db", nil)
	future := writeTestBackup(t, dir, "shop", "files", mine, func(m *artifact.Manifest) { m.CreatedAt = testNow.Add(48 * time.Hour) })

	cli = newFakeCli(nil)
	if err := cli.run(t, "ls", "--from", dir); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(cli.out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "BACKUP") || !strings.Contains(lines[0], "NOTE") {
		t.Fatalf("table:\n%s", cli.out.String())
	}
	row := func(key string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, key) {
				return l
			}
		}
		t.Fatalf("no row for %s:\n%s", key, cli.out.String())
		return ""
	}
	if r := row(signed); strings.Contains(r, "unsigned") || !strings.Contains(r, "shop/db") {
		t.Errorf("signed row: %q", r)
	}
	if r := row(unsigned); !strings.HasSuffix(strings.TrimSpace(r), "unsigned") {
		t.Errorf("unsigned row: %q", r)
	}
	if r := row(future); !strings.Contains(r, "in 1 day") && !strings.Contains(r, "in 2 days") || !strings.Contains(r, "dated in the future") {
		t.Errorf("future row: %q", r)
	}

	cli = newFakeCli(nil)
	if err := cli.run(t, "ls", "--from", dir, "--service", "db", "--format", "json"); err != nil {
		t.Fatal(err)
	}
	var ms []artifact.Manifest
	if err := json.Unmarshal(cli.out.Bytes(), &ms); err != nil || len(ms) != 2 {
		t.Errorf("json: %d manifests, %v\n%s", len(ms), err, cli.out.String())
	}
}
