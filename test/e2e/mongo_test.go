//go:build mongo

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMongoRoundTrip needs an image with mongod, mongodump, mongorestore and mongosh (the
// official mongo image). No such image can be built from Debian's packages, so the test is
// built only with the mongo tag, where it requires the image:
//
//	DOCKER_BACKUP_TEST_MONGO_IMAGE=mongo:7 go test -tags mongo -run TestMongo ./test/e2e
//
// Without the tag it is not part of the suite (rather than reported as skipped); the
// strategy's commands, environment and files are covered by internal/strategy's tests.
func TestMongoRoundTrip(t *testing.T) {
	image := os.Getenv("DOCKER_BACKUP_TEST_MONGO_IMAGE")
	if image == "" {
		t.Fatal("DOCKER_BACKUP_TEST_MONGO_IMAGE is not set: name an image with mongod and its tools, e.g. DOCKER_BACKUP_TEST_MONGO_IMAGE=mongo:7")
	}
	t.Parallel()
	p := newProject(t)
	pw := "m0ngo 'pass"
	ctr := p.service("mongo", image, "-e", "MONGO_INITDB_ROOT_USERNAME=root", "-e", "MONGO_INITDB_ROOT_PASSWORD="+pw,
		"-v", p.volume("mongodata")+":/data/db")
	sh := func(js string) (string, error) {
		out, stderr, err := dockerCmd(nil, "exec", ctr, "mongosh", "--quiet", "-u", "root", "-p", pw, "--authenticationDatabase", "admin", "--eval", js)
		if err != nil {
			return "", fmt.Errorf("%v: %s", err, stderr)
		}
		return strings.TrimSpace(out), nil
	}
	must := func(js string) string {
		t.Helper()
		out, err := sh(js)
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return out
	}
	// The image's init runs a temporary server first: wait until the final one answers twice.
	for i := 0; i < 2; i++ {
		eventually(t, 2*time.Minute, "mongo ready", func() error {
			out, err := sh("db.runCommand({ping: 1}).ok")
			if err == nil && out != "1" {
				err = fmt.Errorf("ping: %s", out)
			}
			return err
		})
		time.Sleep(3 * time.Second)
	}
	must(`db.getSiblingDB("shop").items.insertMany(Array.from({length: 5000}, (_, i) => ({_id: i, name: "item " + i, tags: ["a", i % 7], at: new Date(1700000000000 + i), bin: BinData(0, "AP8Q")})))`)
	must(`db.getSiblingDB("shop").items.createIndex({name: 1})`)
	must(`db.getSiblingDB("logs").events.insertOne({msg: "ünïcødé ✓", n: NumberLong(42)})`)
	state := func() string {
		t.Helper()
		return must(`JSON.stringify(["shop", "logs"].map(d => db.getSiblingDB(d).getCollectionNames().sort().map(c =>
			[d, c, db.getSiblingDB(d)[c].countDocuments(), db.getSiblingDB(d).runCommand({dbHash: 1, collections: [c]}).md5,
			 db.getSiblingDB(d)[c].getIndexes().map(i => i.name).sort()])))`)
	}
	before := state()

	dir := t.TempDir()
	backup(t, "run", "mongo", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)
	if m.Strategy != "mongo" || m.Source["mongodump_version"] == "" {
		t.Errorf("manifest: %+v", m)
	}
	must(`db.getSiblingDB("shop").items.deleteMany({_id: {$lt: 100}}); db.getSiblingDB("logs").events.drop(); db.getSiblingDB("shop").items.updateOne({_id: 500}, {$set: {name: "changed"}})`)
	if state() == before {
		t.Fatal("the changes changed nothing")
	}
	backup(t, "restore", "latest", "--from", dir, "--to", "mongo", "--project", p.name, "--yes")
	if after := state(); after != before {
		t.Errorf("state after restore:\n%s\nwant:\n%s", after, before)
	}
	if left := docker(t, "exec", ctr, "sh", "-c", "ls -a /tmp"); strings.Contains(left, ".docker-backup-") {
		t.Errorf("the credentials file was left behind: %s", left)
	}
}
