package strategy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
)

// Redis backs up a consistent RDB snapshot: it triggers BGSAVE, waits for that very save to
// finish (a save already running is waited for first), reads where the server writes it
// (CONFIG GET dir / dbfilename) and copies the file out through the archive API.
//
// The password comes from --password/DOCKER_BACKUP_PASSWORD, REDIS_PASSWORD (or its _FILE
// form), or a --requirepass argument of the server's command line, and reaches redis-cli in
// its environment (REDISCLI_AUTH), never its command line.
//
// Restore stops the container, puts the RDB where the server loads it and starts it again.
// With append-only mode on, Redis loads the AOF and ignores the RDB, so the snapshot becomes
// the AOF's base instead (Redis 7: a new manifest naming it; older: the RDB-preamble
// appendonly file). The restore then waits until the data is loaded.
type Redis struct {
	Password string
	Log      *slog.Logger
}

// Name returns "redis".
func (r *Redis) Name() string { return "redis" }

// Extension returns "rdb".
func (r *Redis) Extension() string { return "rdb" }

// redisClient runs redis-cli (or valkey-cli / keydb-cli) in the container.
type redisClient struct {
	c   *containers.Container
	cli string
	env []string
}

func (r *Redis) client(ctx context.Context, c *containers.Container) (*redisClient, error) {
	rc := &redisClient{c: c}
	pw := r.Password
	if pw == "" {
		v, _, err := c.Secret(ctx, "REDIS_PASSWORD")
		if err != nil {
			return nil, err
		}
		pw = v
	}
	if pw == "" {
		pw = argValue(c.Args, "--requirepass")
	}
	if pw != "" {
		rc.env = []string{"REDISCLI_AUTH=" + pw}
	}
	for _, cli := range []string{"redis-cli", "valkey-cli", "keydb-cli"} {
		if _, err := c.Output(ctx, cli, "--version"); err == nil {
			rc.cli = cli
			break
		}
	}
	if rc.cli == "" {
		return nil, fmt.Errorf("the container has no redis-cli (nor valkey-cli, keydb-cli)")
	}
	if _, err := rc.do(ctx, "PING"); err != nil {
		return nil, err
	}
	return rc, nil
}

// argValue finds "--flag value" or "--flag=value" in a command line.
func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// do runs one command. redis-cli exits 0 on error replies, so the reply is checked.
func (rc *redisClient) do(ctx context.Context, args ...string) (string, error) {
	var out strings.Builder
	err := rc.c.Exec(ctx, containers.ExecSpec{
		Cmd:    append([]string{rc.cli, "--no-auth-warning"}, args...),
		Env:    rc.env,
		Stdout: &out,
	})
	reply := strings.TrimSpace(out.String())
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", rc.cli, args[0], err)
	}
	first, _, _ := strings.Cut(reply, " ")
	switch first {
	case "NOAUTH":
		if len(rc.env) > 0 {
			// redis-cli's AUTH failed (it says so on stderr) and the command ran unauthenticated.
			return "", fmt.Errorf("redis refused the password (WRONGPASS): check REDIS_PASSWORD, the --requirepass of the service or DOCKER_BACKUP_PASSWORD")
		}
		return "", fmt.Errorf("redis requires a password: set REDIS_PASSWORD (or REDIS_PASSWORD_FILE) on the service, or pass it in DOCKER_BACKUP_PASSWORD")
	case "WRONGPASS", "ERR", "NOPERM", "MISCONF", "LOADING", "READONLY", "BUSY":
		if strings.Contains(reply, "invalid password") || strings.Contains(reply, "invalid username-password") || first == "WRONGPASS" {
			return "", fmt.Errorf("redis refused the password (WRONGPASS): check REDIS_PASSWORD or DOCKER_BACKUP_PASSWORD")
		}
		return "", fmt.Errorf("redis answered %s to %s", reply, args[0])
	}
	return reply, nil
}

func (rc *redisClient) config(ctx context.Context, key string) (string, error) {
	out, err := rc.do(ctx, "CONFIG", "GET", key)
	if err != nil {
		return "", fmt.Errorf("reading %s (CONFIG GET): %w", key, err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 2 {
		return "", fmt.Errorf("redis has no setting %q (CONFIG GET answered %q)", key, out)
	}
	return strings.TrimSpace(lines[1]), nil
}

// info returns the fields of an INFO section.
func (rc *redisClient) info(ctx context.Context, section string) (map[string]string, error) {
	out, err := rc.do(ctx, "INFO", section)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// redisKeys sums the keys of every database in INFO keyspace ("db0:keys=3,expires=1,...").
func redisKeys(keyspace map[string]string) int64 {
	var n int64
	for k, v := range keyspace {
		if !strings.HasPrefix(k, "db") {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			if num, ok := strings.CutPrefix(part, "keys="); ok {
				x, _ := strconv.ParseInt(num, 10, 64)
				n += x
			}
		}
	}
	return n
}

const redisPoll = 100 * time.Millisecond

// snapshot runs a BGSAVE and waits for it to complete.
func (rc *redisClient) snapshot(ctx context.Context) error {
	wait := func(done func(map[string]string) bool) (map[string]string, error) {
		for {
			p, err := rc.info(ctx, "persistence")
			if err != nil {
				return nil, err
			}
			if done(p) {
				return p, nil
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(redisPoll):
			}
		}
	}
	idle := func(p map[string]string) bool { return p["rdb_bgsave_in_progress"] == "0" }
	for {
		before, err := wait(idle) // a save someone else started: let it finish first
		if err != nil {
			return err
		}
		saves, haveCounter := before["rdb_saves"]
		if !haveCounter {
			// Before Redis 7 only LASTSAVE (in seconds) tells saves apart: start ours in a
			// later second than the previous one ended.
			for time.Now().Unix() <= atoi(before["rdb_last_save_time"]) {
				time.Sleep(redisPoll)
			}
		}
		reply, err := rc.do(ctx, "BGSAVE")
		if err != nil {
			if strings.Contains(err.Error(), "in progress") {
				continue // another save started in between: wait for it, then ours
			}
			return fmt.Errorf("BGSAVE: %w", err)
		}
		if !strings.Contains(reply, "started") && !strings.Contains(reply, "scheduled") && reply != "OK" {
			return fmt.Errorf("BGSAVE answered %q", reply)
		}
		after, err := wait(func(p map[string]string) bool {
			if !idle(p) {
				return false
			}
			if haveCounter {
				return atoi(p["rdb_saves"]) > atoi(saves)
			}
			return atoi(p["rdb_last_save_time"]) > atoi(before["rdb_last_save_time"])
		})
		if err != nil {
			return err
		}
		if after["rdb_last_bgsave_status"] != "ok" {
			return fmt.Errorf("the background save failed (rdb_last_bgsave_status:%s): see the server's log", after["rdb_last_bgsave_status"])
		}
		return nil
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

// Backup snapshots the dataset and streams the RDB file to w.
func (r *Redis) Backup(ctx context.Context, c *containers.Container, w io.Writer) (Source, error) {
	if !c.Running {
		return nil, stepErr(c, "dump", fmt.Errorf("the container is not running: BGSAVE needs the server up"))
	}
	rc, err := r.client(ctx, c)
	if err != nil {
		return nil, stepErr(c, "dump", err)
	}
	src := Source{}
	for _, k := range []string{"dir", "dbfilename", "appendonly"} {
		v, err := rc.config(ctx, k)
		if err != nil {
			return nil, stepErr(c, "dump", err)
		}
		src[k] = v
	}
	if server, err := rc.info(ctx, "server"); err == nil {
		src["redis_version"] = server["redis_version"]
	}
	if err := rc.snapshot(ctx); err != nil {
		return nil, stepErr(c, "dump", err)
	}
	if ks, err := rc.info(ctx, "keyspace"); err == nil {
		src["keys"] = strconv.FormatInt(redisKeys(ks), 10)
	}
	file := path.Join(src["dir"], src["dbfilename"])
	f, hdr, err := c.OpenFile(ctx, file)
	if err != nil {
		return nil, stepErr(c, "copy", err)
	}
	defer f.Close()
	src["uid"], src["gid"] = strconv.Itoa(hdr.Uid), strconv.Itoa(hdr.Gid)
	if _, err := io.Copy(w, f); err != nil {
		return nil, stepErr(c, "copy", fmt.Errorf("copying %s: %w", file, err))
	}
	return src, nil
}

// Restore replaces the dataset with the snapshot. The container is stopped for the swap and
// started again on every path.
func (r *Redis) Restore(ctx context.Context, c *containers.Container, data Data) error {
	source, size := data.Source, data.Size
	settings := map[string]string{"dir": source["dir"], "dbfilename": source["dbfilename"], "appendonly": source["appendonly"],
		"appenddirname": "appendonlydir", "appendfilename": "appendonly.aof"}
	version := source["redis_version"]
	if c.Running {
		rc, err := r.client(ctx, c)
		if err != nil {
			return stepErr(c, "restore", err)
		}
		for k := range settings {
			if v, err := rc.config(ctx, k); err == nil {
				settings[k] = v
			}
		}
		if server, err := rc.info(ctx, "server"); err == nil {
			version = server["redis_version"]
		}
	}
	if settings["dir"] == "" || settings["dbfilename"] == "" {
		return stepErr(c, "restore", fmt.Errorf("cannot tell where redis keeps its data: start the container so that it can be asked"))
	}
	uid, gid := int(atoi(source["uid"])), int(atoi(source["gid"]))
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	err := c.WhileStopped(ctx, log, func(ctx context.Context) error {
		if settings["appendonly"] != "yes" {
			return c.WriteFiles(ctx, settings["dir"], containers.File{Name: settings["dbfilename"], Content: data, Size: size, Mode: 0o644, UID: uid, GID: gid})
		}
		af := settings["appendfilename"]
		if major := atoi(strings.SplitN(version, ".", 2)[0]); major > 0 && major < 7 {
			// One appendonly file: an RDB-preamble AOF is loaded as the snapshot.
			return c.WriteFiles(ctx, settings["dir"], containers.File{Name: af, Content: data, Size: size, Mode: 0o644, UID: uid, GID: gid})
		}
		// Redis 7 multi-part AOF: the snapshot becomes the base, with an empty increment.
		base, incr := af+".1.base.rdb", af+".1.incr.aof"
		manifest := fmt.Sprintf("file %s seq 1 type b\nfile %s seq 1 type i\n", base, incr)
		d := settings["appenddirname"]
		log.Info("append-only mode is on: the snapshot becomes the AOF base", "dir", path.Join(settings["dir"], d))
		return c.WriteFiles(ctx, settings["dir"],
			containers.File{Name: d, IsDir: true, Mode: 0o755, UID: uid, GID: gid},
			containers.File{Name: d + "/" + base, Content: data, Size: size, Mode: 0o644, UID: uid, GID: gid},
			containers.File{Name: d + "/" + incr, Content: strings.NewReader(""), Mode: 0o644, UID: uid, GID: gid},
			containers.File{Name: d + "/" + af + ".manifest", Content: strings.NewReader(manifest), Size: int64(len(manifest)), Mode: 0o644, UID: uid, GID: gid},
		)
	})
	if err != nil {
		return stepErr(c, "restore", err)
	}
	return stepErr(c, "restore", r.waitLoaded(ctx, c, atoi(source["keys"])))
}

// waitLoaded waits until the restarted server has loaded its data and checks it holds keys
// when the snapshot had some.
func (r *Redis) waitLoaded(ctx context.Context, c *containers.Container, wantKeys int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if err := c.Refresh(ctx); err != nil {
			return err
		}
		if !c.Running {
			return fmt.Errorf("the container stopped after the restore: see its log (docker logs %s)", c.Name)
		}
		rc, err := r.client(ctx, c)
		if err == nil {
			var p map[string]string
			if p, err = rc.info(ctx, "persistence"); err == nil && p["loading"] == "0" {
				ks, err := rc.info(ctx, "keyspace")
				if err != nil {
					return err
				}
				if have := redisKeys(ks); wantKeys > 0 && have == 0 {
					return fmt.Errorf("the server started with no keys, the snapshot had %d: it did not load the restored data", wantKeys)
				}
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server did not finish loading the restored data in 2 minutes: %v", last)
}
