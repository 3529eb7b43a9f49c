package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var redisImage = fixtureImage("DOCKER_BACKUP_TEST_REDIS_IMAGE", "redis")

type redisServer struct {
	t         *testing.T
	container string
	password  string
}

func startRedis(t *testing.T, p *project, password string, aof bool) *redisServer {
	t.Helper()
	s := &redisServer{t: t, password: password}
	args := []string{"-v", p.volume("redisdata") + ":/data", "--", "redis-server", "--enable-debug-command", "yes"}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	if aof {
		args = append(args, "--appendonly", "yes")
	}
	s.container = p.service("cache", redisImage(t), args...)
	eventually(t, time.Minute, "redis ready", func() error {
		if out := s.try("PING"); out != "PONG" {
			return fmt.Errorf("PING: %s", out)
		}
		return nil
	})
	return s
}

func (s *redisServer) try(args ...string) string {
	exec := []string{"exec", s.container}
	if s.password != "" {
		exec = []string{"exec", "-e", "REDISCLI_AUTH=" + s.password, s.container}
	}
	out, stderr, _ := dockerCmd(nil, append(append(exec, "redis-cli", "--no-auth-warning"), args...)...)
	return strings.TrimSpace(out + stderr)
}

func (s *redisServer) do(args ...string) string {
	s.t.Helper()
	out := s.try(args...)
	if strings.HasPrefix(out, "ERR") || strings.HasPrefix(out, "NOAUTH") || strings.HasPrefix(out, "WRONG") {
		s.t.Fatalf("redis-cli %v: %s", args, out)
	}
	return out
}

// listKeys returns "key type ttl" for every key of a database, TTLs rounded to their order
// of magnitude, in one round trip.
const listKeys = `local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local ttl = redis.call('TTL', k)
  if ttl > 0 then ttl = string.len(tostring(ttl)) end
  table.insert(out, k .. ' ' .. redis.call('TYPE', k)['ok'] .. ' ttl=' .. ttl)
end
table.sort(out)
return out`

// state is the digest of the whole dataset (values and expiry times, all databases) plus a
// readable listing of keys, types and TTLs.
func (s *redisServer) state() string {
	s.t.Helper()
	var b strings.Builder
	b.WriteString("digest " + s.do("DEBUG", "DIGEST") + "\n")
	for _, db := range []string{"0", "1"} {
		for _, l := range strings.Split(s.do("-n", db, "EVAL", listKeys, "0"), "\n") {
			if !strings.HasPrefix(l, "bulk:") {
				b.WriteString(db + " " + l + "\n")
			}
		}
	}
	return b.String()
}

func (s *redisServer) fill() {
	s.t.Helper()
	cmds := [][]string{
		{"SET", "str", "plain ünïcødé ✓"},
		{"SET", "bin", "\x01\x02\xff binary"},
		{"SET", "counter", "41"}, {"INCR", "counter"},
		{"RPUSH", "list", "a", "b", "c", "a"},
		{"SADD", "set", "x", "y", "z"},
		{"ZADD", "zset", "1", "one", "2.5", "two", "-3", "minus"},
		{"HSET", "hash", "f1", "v1", "f2", "v2"},
		{"XADD", "stream", "1-1", "k", "v"}, {"XADD", "stream", "2-1", "k2", "v2"},
		{"PFADD", "hll", "a", "b", "c"},
		{"SETBIT", "bits", "100", "1"},
		{"GEOADD", "geo", "13.361389", "38.115556", "Palermo"},
		{"SET", "expiring", "soon", "EX", "3600"},
		{"HSET", "expiring-hash", "f", "v"}, {"EXPIRE", "expiring-hash", "7200"},
		{"-n", "1", "SET", "other-db", "value"},
		{"-n", "1", "LPUSH", "other-list", "1", "2"},
		{"DEBUG", "POPULATE", "20000", "bulk"},
	}
	for _, c := range cmds {
		s.do(c...)
	}
}

func TestRedisRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		password string
		aof      bool
	}{
		{"no password, RDB", "", false},
		{"password, AOF", "s3cret pass'word", true},
		{"no password, AOF", "", true},
		{"password, RDB", "an0ther", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			r := startRedis(t, p, tc.password, tc.aof)
			r.fill()
			before := r.state()
			if !strings.Contains(before, "stream stream") || !strings.Contains(before, "ttl=4") {
				t.Fatalf("fixture incomplete:\n%.2000s", before)
			}
			// A save already running when the backup starts is waited for.
			r.do("BGSAVE")
			dir := t.TempDir()
			backup(t, "run", "cache", "--project", p.name, "--to", dir)
			m := onlyBackup(t, dir)
			keys := fmt.Sprint(20015)
			if m.Strategy != "redis" || m.Source["dir"] != "/data" || m.Source["dbfilename"] != "dump.rdb" || m.Source["keys"] != keys {
				t.Errorf("manifest: %+v", m.Source)
			}
			if want := map[bool]string{true: "yes", false: "no"}[tc.aof]; m.Source["appendonly"] != want {
				t.Errorf("appendonly %q, want %q", m.Source["appendonly"], want)
			}

			r.do("SET", "str", "changed")
			r.do("DEL", "list", "hash")
			r.do("-n", "1", "FLUSHDB")
			r.do("SET", "new-key", "after the backup")
			r.do("PERSIST", "expiring")
			if r.state() == before {
				t.Fatal("the changes changed nothing")
			}
			out := backup(t, "restore", m.Artifact, "--from", dir, "--to", "cache", "--project", p.name, "--yes")
			mustContain(t, out, "Restored")
			if after := r.state(); after != before {
				t.Errorf("dataset after restore differs:\n%.3000s", diffLines(before, after))
			}
			if !running(t, r.container) {
				t.Error("redis was not started again")
			}
			// The restored data survives a restart: it is what the server loads now.
			docker(t, "restart", r.container)
			eventually(t, time.Minute, "redis back", func() error {
				if out := r.try("-n", "1", "DBSIZE"); out != "2" {
					return fmt.Errorf("DBSIZE %s", out)
				}
				return nil
			})
			if after := r.state(); after != before {
				t.Errorf("dataset after a restart differs:\n%.3000s", diffLines(before, after))
			}
		})
	}
}

func TestRedisAuthFailures(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := startRedis(t, p, "right", false)
	r.do("SET", "k", "v")
	dir := t.TempDir()
	start := time.Now()
	stderr := backupFails(t, []string{"DOCKER_BACKUP_PASSWORD=wrong"}, "run", "cache", "--project", p.name, "--to", dir)
	mustContain(t, stderr, "WRONGPASS", p.name+"/cache")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a wrong password took %s to fail", d)
	}
	// A password set at run time, which the container's command line does not show.
	p2 := newProject(t)
	r2 := startRedis(t, p2, "", false)
	r2.do("SET", "k", "v")
	r2.do("CONFIG", "SET", "requirepass", "runtime-pass")
	stderr = backupFails(t, nil, "run", "cache", "--project", p2.name, "--to", dir)
	mustContain(t, stderr, "requires a password", "DOCKER_BACKUP_PASSWORD")
	backupWithEnv(t, []string{"DOCKER_BACKUP_PASSWORD=runtime-pass"}, "run", "cache", "--project", p2.name, "--to", dir)
	if n := len(listBackups(t, dir)); n != 1 {
		t.Errorf("%d backups, want 1", n)
	}
}

// A server says where it keeps its data, and a server can be started (or CONFIG SET) with its
// directory anywhere: a restore must not follow it out of the container's volumes. Here the
// server's file is the image's entrypoint in /usr/local/bin; the restore is refused before
// the service is stopped, the file is untouched and the server still runs.
func TestRedisRestoreRefusesADirOutsideTheVolumes(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := startRedis(t, p, "", false)
	r.do("SET", "k", "v")
	dir := t.TempDir()
	backup(t, "run", "cache", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)

	p2 := newProject(t)
	evil := &redisServer{t: t, container: p2.service("cache", redisImage(t), "-v", p2.volume("redisdata")+":/data", "--",
		"redis-server", "--save", "", "--enable-protected-configs", "yes", "--dir", "/usr/local/bin", "--dbfilename", "planted.rdb")}
	eventually(t, time.Minute, "redis ready", func() error {
		if out := evil.try("PING"); out != "PONG" {
			return fmt.Errorf("PING: %s", out)
		}
		return nil
	})
	// Set once running: at start the server would load the file it names.
	evil.do("CONFIG", "SET", "dbfilename", "docker-entrypoint.sh")
	if got := evil.do("CONFIG", "GET", "dir"); !strings.Contains(got, "/usr/local/bin") {
		t.Fatalf("CONFIG GET dir: %s", got)
	}
	listing := func() string {
		return docker(t, "exec", evil.container, "sh", "-c", "ls -la /usr/local/bin && sha256sum /usr/local/bin/*")
	}
	before := listing()
	stderr := backupFails(t, nil, "restore", m.Artifact, "--from", dir, "--to", "cache", "--project", p2.name, "--yes")
	mustContain(t, stderr, "refusing", "/usr/local/bin", "not inside a writable volume or bind mount")
	if !running(t, evil.container) {
		t.Fatal("redis is not running after the refused restore")
	}
	if after := listing(); after != before {
		t.Errorf("/usr/local/bin changed:\n%s", diffLines(before, after))
	}
	if got := evil.do("GET", "k"); got != "" {
		t.Errorf("the refused restore loaded data: GET k = %q", got)
	}
}
