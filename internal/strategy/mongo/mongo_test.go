package mongo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

// mongoReplies answers like the official image's tools.
func mongoReplies(dumpCode int) func([]string, []byte) (string, string, int) {
	return func(cmd []string, stdin []byte) (string, string, int) {
		switch {
		case cmd[0] == "mongodump" && cmd[1] == "--version":
			return "mongodump version: 100.9.4\ngit version: abc\n", "", 0
		case cmd[0] == "mongodump":
			if dumpCode != 0 {
				return "", "2024-01-01T00:00:00 Failed: can't create session: connection() error: auth error: sasl conversation error: unable to authenticate using mechanism \"SCRAM-SHA-256\"", dumpCode
			}
			return "ARCHIVE-BYTES", "", 0
		case cmd[0] == "mongorestore":
			return "", "", 0
		}
		return "", "", 0
	}
}

var configFile = regexp.MustCompile(`^/tmp/\.docker-backup-mongo-[0-9a-f]{12}\.yaml$`)

// cleanLeftovers is the command that removes credentials files a crash left behind.
var cleanLeftovers = []string{"find", "/tmp", "-maxdepth", "1", "-name", ".docker-backup-mongo-*.yaml", "-mmin", "+1", "-delete"}

func TestMongoBackupKeepsThePasswordOffArgv(t *testing.T) {
	f := strategytest.NewFakeEngine("MONGO_INITDB_ROOT_USERNAME=root", "MONGO_INITDB_ROOT_PASSWORD=p'w d")
	f.Reply = mongoReplies(0)
	c := f.Container(t)
	var out bytes.Buffer
	src, err := (&Strategy{}).Backup(context.Background(), c, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "ARCHIVE-BYTES" || src["mongodump_version"] != "100.9.4" {
		t.Errorf("output %q, source %v", out.String(), src)
	}
	if len(f.Written()) != 1 || !configFile.MatchString(f.Written()[0].Path) || f.Written()[0].Mode != 0o600 ||
		f.Written()[0].Content != "password: 'p''w d'\n" {
		t.Fatalf("config file written: %+v", f.Written())
	}
	cfg := f.Written()[0].Path
	want := [][]string{
		{"mongodump", "--version"},
		cleanLeftovers,
		{"mongodump", "--archive", "--username", "root", "--authenticationDatabase", "admin", "--config", cfg},
		{"rm", "-f", cfg},
	}
	assertExecs(t, f, want)
	for _, e := range f.Execs() {
		if strings.Contains(strings.Join(e.Cmd, " "), "p'w d") || strings.Contains(strings.Join(e.Env, " "), "p'w d") {
			t.Errorf("the password is on a command line or in the environment: %v %v", e.Cmd, e.Env)
		}
		if strings.Contains(strings.Join(e.Cmd, " "), "--gzip") {
			t.Error("mongodump must not compress: the pipeline does")
		}
	}
}

func TestMongoWithoutCredentials(t *testing.T) {
	f := strategytest.NewFakeEngine()
	f.Reply = mongoReplies(0)
	if _, err := (&Strategy{}).Backup(context.Background(), f.Container(t), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	assertExecs(t, f, [][]string{{"mongodump", "--version"}, {"mongodump", "--archive"}})
	if len(f.Written()) != 0 {
		t.Errorf("files written without credentials: %+v", f.Written())
	}
}

func TestMongoPasswordFromSecretFile(t *testing.T) {
	f := strategytest.NewFakeEngine("MONGO_INITDB_ROOT_USERNAME_FILE=/run/secrets/user", "MONGO_INITDB_ROOT_PASSWORD_FILE=/run/secrets/pw")
	f.Files["/run/secrets/user"] = "admin\n"
	f.Files["/run/secrets/pw"] = "from-a-secret\n"
	f.Reply = mongoReplies(0)
	if _, err := (&Strategy{}).Backup(context.Background(), f.Container(t), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if len(f.Written()) != 1 || f.Written()[0].Content != "password: 'from-a-secret'\n" {
		t.Fatalf("config file: %+v", f.Written())
	}
	if got := strings.Join(f.Execs()[2].Cmd, " "); !strings.Contains(got, "--username admin ") {
		t.Errorf("dump command %q", got)
	}
}

func TestMongoDumpFailure(t *testing.T) {
	f := strategytest.NewFakeEngine("MONGO_INITDB_ROOT_USERNAME=root", "MONGO_INITDB_ROOT_PASSWORD=pw")
	f.Reply = mongoReplies(1)
	_, err := (&Strategy{}).Backup(context.Background(), f.Container(t), &bytes.Buffer{})
	if err == nil {
		t.Fatal("a failing mongodump was a success")
	}
	for _, want := range []string{"dump of shop/db", "mongodump exited with code 1", "unable to authenticate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The credentials file is removed on the failure path too.
	last := f.Execs()[len(f.Execs())-1].Cmd
	if last[0] != "rm" || !configFile.MatchString(last[2]) {
		t.Errorf("last command %v, want the config file removed", last)
	}
}

func TestMongoRestore(t *testing.T) {
	f := strategytest.NewFakeEngine("MONGO_INITDB_ROOT_USERNAME=root", "MONGO_INITDB_ROOT_PASSWORD=pw")
	f.Reply = mongoReplies(0)
	err := (&Strategy{}).Restore(context.Background(), f.Container(t), strategy.Data{Reader: strings.NewReader("ARCHIVE"), Size: 7})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.Written()[0].Path
	assertExecs(t, f, [][]string{
		cleanLeftovers,
		{"mongorestore", "--archive", "--drop", "--username", "root", "--authenticationDatabase", "admin", "--config", cfg},
		{"rm", "-f", cfg},
	})
	if string(f.Execs()[1].Stdin) != "ARCHIVE" {
		t.Errorf("mongorestore read %q", f.Execs()[1].Stdin)
	}
}

func TestMongoStoppedContainer(t *testing.T) {
	f := strategytest.NewFakeEngine()
	f.Running = false
	_, err := (&Strategy{}).Backup(context.Background(), f.Container(t), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Backup on a stopped container: %v", err)
	}
}

func assertExecs(t *testing.T, f *strategytest.FakeEngine, want [][]string) {
	t.Helper()
	if len(f.Execs()) != len(want) {
		var got []string
		for _, e := range f.Execs() {
			got = append(got, strings.Join(e.Cmd, " "))
		}
		t.Fatalf("commands run:\n%s\nwant %d commands", strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if got := strings.Join(f.Execs()[i].Cmd, " "); got != strings.Join(w, " ") {
			t.Errorf("command %d: %q, want %q", i, got, strings.Join(w, " "))
		}
	}
}

// A non-root image runs the tools as its user: the credentials file must be that user's.
func TestMongoCredentialsFileBelongsToTheImageUser(t *testing.T) {
	for _, tc := range []struct {
		user     string
		uid, gid int
	}{{"", 0, 0}, {"mongodb", 999, 998}, {"1001", 1001, 0}, {"mongodb:root", 999, 0}, {"4000:4001", 4000, 4001}} {
		f := strategytest.NewFakeEngine("MONGO_INITDB_ROOT_USERNAME=root", "MONGO_INITDB_ROOT_PASSWORD=pw")
		f.User = tc.user
		f.Files["/etc/passwd"] = "root:x:0:0:root:/root:/bin/bash\nmongodb:x:999:998::/data/db:/bin/sh\n"
		f.Files["/etc/group"] = "root:x:0:\nmongodb:x:998:\n"
		f.Reply = mongoReplies(0)
		if _, err := (&Strategy{}).Backup(context.Background(), f.Container(t), &bytes.Buffer{}); err != nil {
			t.Fatalf("user %q: %v", tc.user, err)
		}
		if w := f.Written()[0]; w.UID != tc.uid || w.GID != tc.gid || w.Mode != 0o600 {
			t.Errorf("user %q: credentials file %d:%d mode %o, want %d:%d 0600", tc.user, w.UID, w.GID, w.Mode, tc.uid, tc.gid)
		}
	}
}
