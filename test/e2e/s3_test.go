package e2e

import (
	"strings"
	"testing"
	"time"
)

func TestS3RoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	s3 := startMinio(t)
	s3.bucket("backups")
	// Trailing and doubled slashes in the prefix are normalised.
	url := s3.url("backups/site-a//nested/")

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	out := backupWithEnv(t, s3.env(), "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, "s3://backups/site-a/nested")
	// The volume's bytes go from this host's file system (the plugin reads the volume in
	// place: the engine is local) to S3, never a raw tar through the Engine's API, and come
	// back through a worker container below.
	out, stderr, err := dockerCmd(s3.env(), "backup", "run", "files", "--project", p.name, "--to", url)
	if err != nil {
		t.Fatalf("backing up the volume to S3: %v\n%s\n%s", err, out, stderr)
	}
	mustContain(t, out, "via      this host's file system")
	if strings.Contains(stderr, "The worker wrote the backup file") {
		t.Errorf("to S3 the worker wrote a local file; stderr:\n%s", stderr)
	}
	for _, k := range s3.objects("backups") {
		if !strings.HasPrefix(k, "site-a/nested/"+p.name+"/") {
			t.Errorf("object %q is outside the prefix", k)
		}
	}
	if n := len(s3.objects("backups")); n != 6 {
		t.Errorf("%d objects in the bucket, want 2 artifacts, 2 chunk lists and 2 manifests", n)
	}

	// Disaster: the whole project is gone, containers, volumes and all. A fresh one, and the
	// bucket alone, bring the data back.
	p.cleanup()
	listing := backupWithEnv(t, s3.env(), "ls", "--from", url)
	mustContain(t, listing, p.name+"/db", p.name+"/files", "postgres", "volume")

	// The rebuilt host runs the project under its old name (compose names it after its
	// directory): `latest` never takes another project's backups.
	fresh := p
	db2 := startPostgres(t, fresh, "db")
	backupWithEnv(t, s3.env(), "restore", "latest", "--from", url, "--to", "db", "--project", fresh.name, "--yes")
	if got := db2.checksums(); !equalMaps(got, original) {
		t.Errorf("database restored from S3 differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, fresh)
	f2.sh("rm -rf /data/* /config/*")
	_, stderr, err = dockerCmd(s3.env(), "backup", "restore", "latest", "--from", url, "--to", "files", "--project", fresh.name, "--yes")
	if err != nil {
		t.Fatalf("restoring the volume from S3: %v\n%s", err, stderr)
	}
	mustContain(t, stderr, "Volume data path: a worker container beside the data")
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored from S3 differs:\n%s", diffLines(tree, got))
	}
}

func TestS3TwoProjectsShareABucket(t *testing.T) {
	t.Parallel()
	s3 := startMinio(t)
	s3.bucket("shared")
	a, b := newProject(t), newProject(t)
	for _, p := range []*project{a, b} {
		p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	}
	// Each host writes under its own prefix; the same service names never meet.
	backupWithEnv(t, s3.env(), "run", "files", "--project", a.name, "--to", s3.url("shared/host-a"))
	// b's through a worker container: its stream goes to S3 over the worker's socket.
	out := backupWithEnv(t, append(s3.env(), "DOCKER_BACKUP_WORKER=on"), "run", "files", "--project", b.name, "--to", s3.url("shared/host-b"))
	mustContain(t, out, "via      a worker container beside the data")
	la := backupWithEnv(t, s3.env(), "ls", "--from", s3.url("shared/host-a"))
	if !strings.Contains(la, a.name) || strings.Contains(la, b.name) {
		t.Errorf("host-a's listing shows another host's backups:\n%s", la)
	}
	all := backupWithEnv(t, s3.env(), "ls", "--from", s3.url("shared"))
	mustContain(t, all, a.name, b.name)
}

func TestS3Failures(t *testing.T) {
	t.Parallel()
	s3 := startMinio(t)
	s3.bucket("backups")
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "head -c 2000000 /dev/urandom > /data/small")
	url := s3.url("backups/x")
	backupWithEnv(t, s3.env(), "run", "files", "--project", p.name, "--to", url)
	first := s3.objects("backups")

	stderr := backupFails(t, []string{"AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=wrong"}, "run", "files", "--project", p.name, "--to", url)
	mustContain(t, stderr, "access key", "AWS_ACCESS_KEY_ID", "nothing was stored")
	if strings.Contains(stderr, s3.secret) {
		t.Error("an error shows the secret key")
	}
	stderr = backupFails(t, s3.env(), "run", "files", "--project", p.name, "--to", s3.url("no-such-bucket"))
	mustContain(t, stderr, `bucket "no-such-bucket" does not exist`)
	stderr = backupFails(t, s3.env(), "target", "check", s3.url("no-such-bucket"))
	mustContain(t, stderr, "not usable")
	mustContain(t, backupWithEnv(t, s3.env(), "target", "check", url), "ok      write", "ok      delete", "ready for backups")

	// MinIO dies in the middle of an upload and stays down past the client's retries (a
	// short outage is ridden out: the part is sent again). The run fails, nothing new is
	// listed, the older backup is intact, and once the server is back no parts are left.
	docker(t, "exec", filler, "sh", "-c", "head -c 400000000 /dev/urandom > /data/big")
	done := make(chan string)
	go func() {
		_, stderr, err := dockerCmd(s3.env(), "backup", "run", "files", "--project", p.name, "--to", url)
		if err == nil {
			stderr = "SUCCEEDED"
		}
		done <- stderr
	}()
	eventually(t, time.Minute, "upload in progress", func() error {
		if len(s3.incompleteUploads("backups")) == 0 {
			return errNotYet
		}
		return nil
	})
	s3.kill()
	time.Sleep(25 * time.Second)
	s3.start()
	stderr = <-done
	if stderr == "SUCCEEDED" {
		t.Fatal("the backup succeeded although the server was killed during the upload")
	}
	mustContain(t, stderr, "nothing was stored")
	if now := s3.objects("backups"); strings.Join(now, ",") != strings.Join(first, ",") {
		t.Errorf("objects after the failed upload: %v, want %v", now, first)
	}
	eventually(t, 90*time.Second, "no leftover parts", func() error {
		if left := s3.incompleteUploads("backups"); len(left) > 0 {
			return errNotYet
		}
		return nil
	})
	// The older backup still restores.
	backupWithEnv(t, s3.env(), "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
}

func TestS3UnicodeServiceNames(t *testing.T) {
	t.Parallel()
	s3 := startMinio(t)
	s3.bucket("backups")
	p := newProject(t)
	vol := p.volume("data")
	service := "dätä-ünï ✓"
	name := p.name + "-unicode-1"
	docker(t, "run", "-d", "--name", name, "--label", "com.docker.compose.project="+p.name,
		"--label", "com.docker.compose.service="+service, "-v", vol+":/data", pauseImage)
	url := s3.url("backups/ünï/prefix/")
	backupWithEnv(t, s3.env(), "run", service, "--project", p.name, "--to", url)
	listing := backupWithEnv(t, s3.env(), "ls", "--from", url, "--format", "json")
	mustContain(t, listing, service)
	backupWithEnv(t, s3.env(), "restore", "latest", "--from", url, "--to", service, "--project", p.name, "--yes")
	if !running(t, name) {
		t.Error("container not running after restore")
	}
}

type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet error = notYet{}
