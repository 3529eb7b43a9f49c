// Package redis is the Redis (and Valkey) strategy: an RDB snapshot copied out, put back where
// the server loads it (or made the AOF's base); verify reads the keys per database from the RDB
// (rdb.go) and compares them with INFO keyspace.
package redis

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Strategy backs up a consistent RDB snapshot: it triggers BGSAVE, waits for that very save to
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
type Strategy struct {
	Password string
	Log      *slog.Logger
}

// Name returns "redis".
func (r *Strategy) Name() string { return "redis" }

// Extension returns "rdb".
func (r *Strategy) Extension() string { return "rdb" }

// redisClient runs redis-cli (or valkey-cli / keydb-cli) in the container.
type redisClient struct {
	c   *containers.Container
	cli string
	env []string
}

func (r *Strategy) client(ctx context.Context, c *containers.Container) (*redisClient, error) {
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
func (r *Strategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	if !c.Running {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("the container is not running: BGSAVE needs the server up"))
	}
	rc, err := r.client(ctx, c)
	if err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	src := strategy.Source{}
	for _, k := range []string{"dir", "dbfilename", "appendonly"} {
		v, err := rc.config(ctx, k)
		if err != nil {
			return nil, strategy.StepErr(c, "dump", err)
		}
		src[k] = v
	}
	if server, err := rc.info(ctx, "server"); err == nil {
		src["redis_version"] = server["redis_version"]
	}
	if err := rc.snapshot(ctx); err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	if ks, err := rc.info(ctx, "keyspace"); err == nil {
		src["keys"] = strconv.FormatInt(redisKeys(ks), 10)
	}
	file := path.Join(src["dir"], src["dbfilename"])
	f, hdr, err := c.OpenFile(ctx, file)
	if err != nil {
		return nil, strategy.StepErr(c, "copy", err)
	}
	defer f.Close()
	src["uid"], src["gid"] = strconv.Itoa(hdr.Uid), strconv.Itoa(hdr.Gid)
	if _, err := io.Copy(w, f); err != nil {
		return nil, strategy.StepErr(c, "copy", fmt.Errorf("copying %s: %w", file, err))
	}
	return src, nil
}

// redisLocation is where the server keeps its data, as it says itself.
type redisLocation struct {
	dir, dbfilename, appendonly, appenddirname, appendfilename, version string
}

// location asks the running server where its data lives. A stopped container cannot be
// asked: then the manifest's dir is used. Either way the answer is only a claim — a server
// can be started with --dir /usr/local/bin, or CONFIG SET it — so confine checks it.
func (r *Strategy) location(ctx context.Context, c *containers.Container, data strategy.Data) (redisLocation, error) {
	loc := redisLocation{dir: data.Source["dir"], dbfilename: data.Source["dbfilename"], appendonly: data.Source["appendonly"],
		appenddirname: "appendonlydir", appendfilename: "appendonly.aof", version: data.Source["redis_version"]}
	if c.Running {
		rc, err := r.client(ctx, c)
		if err != nil {
			return loc, err
		}
		for k, dst := range map[string]*string{"dir": &loc.dir, "dbfilename": &loc.dbfilename, "appendonly": &loc.appendonly,
			"appenddirname": &loc.appenddirname, "appendfilename": &loc.appendfilename} {
			if v, err := rc.config(ctx, k); err == nil {
				*dst = v
			} else if k == "dir" || k == "dbfilename" || k == "appendonly" {
				return loc, err
			}
		}
		if server, err := rc.info(ctx, "server"); err == nil {
			loc.version = server["redis_version"]
		}
	} else if loc.dir == "" || !path.IsAbs(loc.dir) {
		return loc, fmt.Errorf("cannot tell where redis keeps its data: start the container so that it can be asked")
	}
	for _, name := range []string{loc.dbfilename, loc.appenddirname, loc.appendfilename} {
		if !isBaseName(name) {
			return loc, fmt.Errorf("redis file name %q is not a plain file name", name)
		}
	}
	if !path.IsAbs(loc.dir) {
		return loc, fmt.Errorf("redis says its data directory is %q, not an absolute path", loc.dir)
	}
	loc.dir = path.Clean(loc.dir)
	if err := loc.confine(ctx, c, data.Allowed); err != nil {
		if !c.Running {
			return loc, fmt.Errorf("the redis data directory is %s, as the backup's manifest says: %w; start the container so that redis can say where its data lives", loc.dir, err)
		}
		return loc, fmt.Errorf("the redis data directory is %s, as the running server says (CONFIG GET dir): %w", loc.dir, err)
	}
	return loc, nil
}

// confine refuses a location outside the directories a restore may write into (a volume or
// bind mount of the container, through the sidecar narrowed to the job's paths), or reached
// through a symbolic link: the Engine writes as root and follows links.
func (loc redisLocation) confine(ctx context.Context, c *containers.Container, allowed []string) error {
	if err := strategy.CheckConfined(ctx, c, path.Join(loc.dir, loc.dbfilename), allowed, "the redis data file"); err != nil {
		return err
	}
	if loc.appendonly != "yes" {
		return nil
	}
	return strategy.CheckConfined(ctx, c, path.Join(loc.dir, loc.appenddirname, loc.appendfilename), allowed, "the redis append-only file")
}

func isBaseName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

// Restore replaces the dataset with the snapshot. The location comes from the running server
// (CONFIG GET) and must be inside data.Allowed, reached through no symbolic link. The container is stopped for the swap and started again on every path. The
// snapshot is written beside the live files under a temporary name and linked into place
// only once the whole artifact has been read and verified: a restore cut before leaves the
// dataset as it was. With append-only mode on, Redis loads the AOF and ignores the RDB, so the
// snapshot becomes the AOF's base instead (Redis 7: new files and a new manifest that lists
// the old files as history, which Redis deletes at start; older: the RDB-preamble
// appendonly file). The restore then waits until the data is loaded.
func (r *Strategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	loc, err := r.location(ctx, c, data)
	if err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	uid, gid := int(atoi(data.Source["uid"])), int(atoi(data.Source["gid"]))
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	temp := func(name string) string { return "." + name + strategy.RestoreSuffix }
	file := func(name string, content io.Reader, size int64) containers.File {
		return containers.File{Name: name, Content: content, Size: size, Mode: 0o644, UID: uid, GID: gid}
	}
	empty := func(name string) containers.File { return file(name, strings.NewReader(""), 0) }
	var leftovers []string
	err = c.WhileStopped(ctx, log, func(ctx context.Context) error {
		// Again now that no process of the container can swap a directory for a link.
		if err := loc.confine(ctx, c, data.Allowed); err != nil {
			return err
		}
		if loc.appendonly != "yes" || (atoi(strings.SplitN(loc.version, ".", 2)[0]) > 0 && atoi(strings.SplitN(loc.version, ".", 2)[0]) < 7) {
			// One file: dump.rdb, or (Redis < 7 with AOF) appendonly.aof with an RDB preamble.
			name := loc.dbfilename
			if loc.appendonly == "yes" {
				name = loc.appendfilename
			}
			leftovers = append(leftovers, path.Join(loc.dir, temp(name)))
			return c.WriteStream(ctx, loc.dir, gated(data,
				[]containers.File{file(temp(name), data, data.Size)},
				[]containers.File{{Name: name, Link: temp(name)}, empty(temp(name))}))
		}
		// Redis 7 multi-part AOF: the snapshot becomes the base of a new manifest.
		af, d := loc.appendfilename, loc.appenddirname
		seq := time.Now().Unix()
		base, incr := fmt.Sprintf("%s.%d.base.rdb", af, seq), fmt.Sprintf("%s.%d.incr.aof", af, seq)
		manifest := fmt.Sprintf("file %s seq %d type b\n", base, seq)
		for _, h := range r.aofHistory(ctx, c, path.Join(loc.dir, d, af+".manifest")) {
			manifest += h
		}
		manifest += fmt.Sprintf("file %s seq %d type i\n", incr, seq)
		log.Info("append-only mode is on: the snapshot becomes the AOF base", "dir", path.Join(loc.dir, d))
		leftovers = append(leftovers, path.Join(loc.dir, d, temp(af+".manifest")))
		return c.WriteStream(ctx, loc.dir, gated(data,
			[]containers.File{
				{Name: d, IsDir: true, Mode: 0o755, UID: uid, GID: gid},
				file(d+"/"+base, data, data.Size),
				empty(d + "/" + incr),
			},
			[]containers.File{
				file(d+"/"+temp(af+".manifest"), strings.NewReader(manifest), int64(len(manifest))),
				{Name: d + "/" + af + ".manifest", Link: d + "/" + temp(af+".manifest")},
				empty(d + "/" + temp(af+".manifest")),
			}))
	})
	if err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	c.RemoveLeftover(ctx, leftovers...)
	return strategy.StepErr(c, "restore", r.waitLoaded(ctx, c, atoi(data.Source["keys"])))
}

// Interrupted: the live files are replaced only once the snapshot is complete and verified.
func (r *Strategy) Interrupted() string { return "" }

// Check refuses an artifact that is not an RDB file.
func (r *Strategy) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	head := make([]byte, 9)
	if _, err := io.ReadFull(data, head); err != nil || !rdbHeader.Match(head) {
		return fmt.Errorf("the backup is not a Redis RDB file (it starts with %q)", head)
	}
	return data.Drain()
}

var rdbHeader = regexp.MustCompile(`^(REDIS\d{4}|VALKEY\d{3})$`)

// aofHistory lists the files of the current AOF manifest as history entries, so that Redis
// deletes them once it has loaded the restored base.
func (r *Strategy) aofHistory(ctx context.Context, c *containers.Container, manifest string) []string {
	f, _, err := c.OpenFile(ctx, manifest)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 6 && fields[0] == "file" && fields[2] == "seq" && fields[4] == "type" && isBaseName(fields[1]) && aofName.MatchString(fields[1]) {
			out = append(out, fmt.Sprintf("file %s seq %s type h\n", fields[1], fields[3]))
		}
	}
	return out
}

var aofName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// gated streams the staged files, then reads the rest of data (which verifies the whole
// artifact), then — only if that succeeded — the swap entries.
func gated(data strategy.Data, staged, swap []containers.File) func() (*containers.File, error) {
	i, verified := 0, false
	return func() (*containers.File, error) {
		if i < len(staged) {
			i++
			return &staged[i-1], nil
		}
		if !verified {
			if err := data.Drain(); err != nil {
				return nil, err
			}
			verified = true
		}
		if j := i - len(staged); j < len(swap) {
			i++
			return &swap[j], nil
		}
		return nil, nil
	}
}

// waitLoaded waits until the restarted server has loaded its data and checks it holds keys
// when the snapshot had some.
func (r *Strategy) waitLoaded(ctx context.Context, c *containers.Container, wantKeys int64) error {
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
