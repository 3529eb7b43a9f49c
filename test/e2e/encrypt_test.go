package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// ageKey makes an age identity file and returns its path and public key.
func ageKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	file := filepath.Join(dir, name)
	if out, err := exec.Command(tool(t, "age-keygen"), "-o", file).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	pub, err := exec.Command(tool(t, "age-keygen"), "-y", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.TrimSpace(string(pub))
}

// sshKey makes an ed25519 SSH key pair and returns the private key's path and the public key.
func sshKey(t *testing.T, dir string) (string, string) {
	t.Helper()
	file := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "backup-test", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.TrimSpace(string(pub))
}

// openWithAge decrypts an artifact with the age CLI and decompresses it with zstd, as the
// manual recovery in docs/artifact-format.md says.
func openWithAge(t *testing.T, artifactFile string, ageArgs ...string) []byte {
	t.Helper()
	args := append([]string{"-c", `"$0" -d "$@" | zstd -dc`, tool(t, "age")}, append(ageArgs, artifactFile)...)
	cmd := exec.Command("sh", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -d %v | zstd -dc: %v\n%s", ageArgs, err, stderr.String())
	}
	return out
}

func TestEncryptedBackupWithAgeCLI(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	ageIdentity, agePub := ageKey(t, keys, "age.key")
	otherIdentity, _ := ageKey(t, keys, "other.key")
	sshIdentity, sshPub := sshKey(t, keys)
	recipientsFile := filepath.Join(keys, "recipients.txt")
	if err := os.WriteFile(recipientsFile, []byte("# the ops team's SSH key\n"+sshPub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	before := db.checksums()
	dir := t.TempDir()
	out := backup(t, "run", "db", "--project", p.name, "--to", dir, "-r", agePub, "-R", recipientsFile)
	mustContain(t, out, "encrypted")
	m := onlyBackup(t, dir)
	if m.Encryption == nil || m.Encryption.Scheme != "age" || !strings.HasSuffix(m.Artifact, ".sql.zst.age") ||
		!slices.Contains(m.Encryption.Recipients, agePub) || !slices.ContainsFunc(m.Encryption.Recipients, func(r string) bool { return strings.HasPrefix(r, "ssh-ed25519 ") }) {
		t.Fatalf("manifest: %+v, key %s", m.Encryption, m.Artifact)
	}
	stored, err := os.ReadFile(filepath.Join(dir, m.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stored, []byte("age-encryption.org/v1\n")) {
		t.Fatalf("the artifact is not an age file: %q", stored[:min(len(stored), 40)])
	}
	mustContain(t, backup(t, "ls", "--from", dir), "encrypted (age)")

	// Anyone with one of the identities opens it with the standard tools.
	plain := openWithAge(t, filepath.Join(dir, m.Artifact), "-i", ageIdentity)
	if !bytes.Contains(plain, []byte("PostgreSQL database dump complete")) || !bytes.Contains(plain, []byte("COPY public.pgbench_accounts")) {
		t.Fatalf("age -d | zstd -dc does not give the dump (%d bytes)", len(plain))
	}
	if int64(len(plain)) != m.RawSize {
		t.Errorf("decrypted %d bytes, the manifest says %d raw bytes", len(plain), m.RawSize)
	}
	if viaSSH := openWithAge(t, filepath.Join(dir, m.Artifact), "-i", sshIdentity); !bytes.Equal(viaSSH, plain) {
		t.Error("the SSH identity decrypts something else")
	}

	db.sql(`DELETE FROM pgbench_accounts WHERE aid % 2 = 0`)
	changed := db.checksums()
	// Without an identity, or with the wrong one: refused, and nothing touched.
	stderr := backupFails(t, []string{"DOCKER_BACKUP_AGE_IDENTITY_FILE="}, "restore", m.Artifact, "--from", dir, "--to", "db", "--project", p.name, "--yes")
	mustContain(t, stderr, "encrypted (age)", agePub, "--identity")
	stderr = backupFails(t, nil, "restore", m.Artifact, "--from", dir, "--to", "db", "--project", p.name, "--yes", "-i", otherIdentity)
	mustContain(t, stderr, "untouched", "none of the given identities")
	if got := db.checksums(); !equalMaps(got, changed) {
		t.Fatal("a refused restore changed the database")
	}
	// With the SSH key it restores.
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "db", "--project", p.name, "--yes", "-i", sshIdentity)
	if got := db.checksums(); !equalMaps(got, before) {
		t.Fatalf("restored data differs:\n%v\nwant\n%v", got, before)
	}
	// And it verifies, decrypted by the identity in the environment.
	r := verifyJSON(t, 0, append([]string{m.Artifact, "--from", dir}, "-i", ageIdentity)...)
	if c := check(t, r, "rows public.pgbench_accounts"); !c.Passed || c.Found != "200000" {
		t.Errorf("verify: %+v", c)
	}
}

func TestEncryptedWithPassphraseFile(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	before := f.tree()
	secret := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(secret, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	backup(t, "run", "files", "--project", f.p.name, "--to", dir, "--passphrase-file", secret)
	m := onlyBackup(t, dir)
	if m.Encryption == nil || !slices.Equal(m.Encryption.Recipients, []string{"scrypt"}) {
		t.Fatalf("manifest encryption: %+v", m.Encryption)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, m.Artifact) + artifact.ManifestSuffix)
	if strings.Contains(string(raw), "horse") {
		t.Fatal("the passphrase is in the manifest")
	}
	f.sh(changeScript)
	wrong := filepath.Join(t.TempDir(), "wrong")
	_ = os.WriteFile(wrong, []byte("tr0ub4dor&3\n"), 0o600)
	backupFails(t, nil, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes", "--passphrase-file", wrong)
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes", "--passphrase-file", secret)
	if after := f.tree(); after != before {
		t.Fatalf("restored tree differs:\n%s", diffLines(before, after))
	}
}

// TestSidecarEncrypted: the sidecar encrypts every backup for DOCKER_BACKUP_AGE_RECIPIENTS and
// a job's for its docker-backup.recipients label too; it restores and verifies them with
// DOCKER_BACKUP_AGE_IDENTITY_FILE; the label's SSH key opens them with the age CLI.
func TestSidecarEncrypted(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	ageIdentity, agePub := ageKey(t, keys, "age.key")
	sshIdentity, sshPub := sshKey(t, keys)
	if err := os.Chmod(ageIdentity, 0o644); err != nil { // read by the sidecar's user
		t.Fatal(err)
	}
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.recipients="+sshPub)
	docker(t, "exec", app, "sh", "-c", "echo secret data > /data/file && seq 1 10000 > /data/numbers")
	_, backups := startSidecar(t, p, "-v", keys+":/run/keys:ro", "-e", "DOCKER_BACKUP_AGE_RECIPIENTS="+agePub,
		"-e", "DOCKER_BACKUP_AGE_IDENTITY_FILE=/run/keys/age.key")
	backup(t, "run", "app", "--project", p.name)
	m := manifestFile(t, volumeDir(t, backups), sidecarBackups(t, p.name, "app")[0].Key)
	if m.Encryption == nil || !slices.Contains(m.Encryption.Recipients, agePub) || len(m.Encryption.Recipients) != 2 {
		t.Fatalf("manifest encryption: %+v", m.Encryption)
	}
	file := filepath.Join(volumeDir(t, backups), m.Artifact)
	if !bytes.Contains(openWithAge(t, file, "-i", sshIdentity), []byte("secret data")) {
		t.Fatal("the label's SSH recipient cannot open the backup")
	}
	stored, _ := os.ReadFile(file)
	if bytes.Contains(stored, []byte("secret data")) {
		t.Fatal("the stored artifact holds the plaintext")
	}
	docker(t, "exec", app, "sh", "-c", "echo changed > /data/file")
	backup(t, "restore", "latest", "--to", "app", "--project", p.name, "--yes")
	if got := strings.TrimSpace(docker(t, "exec", app, "cat", "/data/file")); got != "secret data" {
		t.Fatalf("after the restore /data/file holds %q", got)
	}
	out, stderr, code := verifyCmd(t, "latest", "--service", "app", "-p", p.name)
	if code != 0 {
		t.Fatalf("verify through the sidecar exited %d\n%s\n%s", code, out, stderr)
	}
	mustContain(t, out, "PASS")
}

// TestEncryptedVolumeReadInPlace: a volume backup read in place on the host (the plugin
// compresses and encrypts in its own process) is an age file for the recipient, opened by the
// age CLI into the volume's tar stream, and restores the tree exactly.
func TestEncryptedVolumeReadInPlace(t *testing.T) {
	t.Parallel()
	ageIdentity, agePub := ageKey(t, t.TempDir(), "age.key")
	f := newVolumeFixture(t)
	before := f.tree()
	dir := t.TempDir()
	out := backup(t, "run", "files", "--project", f.p.name, "--to", dir, "-r", agePub)
	mustContain(t, out, "encrypted", "via      this host's file system")
	m := onlyBackup(t, dir)
	if m.Encryption == nil || m.Encryption.Scheme != "age" || !slices.Contains(m.Encryption.Recipients, agePub) || m.Source["data_path"] != "host" {
		t.Fatalf("manifest: encryption %+v, data path %q", m.Encryption, m.Source["data_path"])
	}
	plain := openWithAge(t, filepath.Join(dir, m.Artifact), "-i", ageIdentity)
	if int64(len(plain)) != m.RawSize || !bytes.Contains(plain, []byte("data/hello.txt")) {
		t.Fatalf("age -d | zstd -dc gives %d bytes, the manifest says %d raw bytes of a tar of data/", len(plain), m.RawSize)
	}
	f.sh(changeScript)
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes", "-i", ageIdentity)
	if after := f.tree(); after != before {
		t.Fatalf("restored tree differs:\n%s", diffLines(before, after))
	}
}
