package redis

import (
	"context"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
	"github.com/moby/moby/api/types/container"
)

// redisReplies answers like redis-cli against a server whose CONFIG GET says dir and
// dbfilename, with append-only mode as given.
func redisReplies(dir, dbfilename, appendonly string) func([]string, []byte) (string, string, int) {
	return func(cmd []string, _ []byte) (string, string, int) {
		args := cmd[1:]
		if len(args) > 0 && args[0] == "--no-auth-warning" {
			args = args[1:]
		}
		switch {
		case len(args) == 1 && args[0] == "--version":
			return "redis-cli 7.0.15\n", "", 0
		case len(args) == 1 && args[0] == "PING":
			return "PONG\n", "", 0
		case len(args) == 3 && args[0] == "CONFIG" && args[1] == "GET":
			v := map[string]string{"dir": dir, "dbfilename": dbfilename, "appendonly": appendonly,
				"appenddirname": "appendonlydir", "appendfilename": "appendonly.aof"}[args[2]]
			return args[2] + "\n" + v + "\n", "", 0
		case len(args) == 2 && args[0] == "INFO" && args[1] == "server":
			return "# Server\r\nredis_version:7.0.15\r\n", "", 0
		case len(args) == 2 && args[0] == "INFO" && args[1] == "persistence":
			return "# Persistence\r\nloading:0\r\n", "", 0
		}
		return "", "", 0
	}
}

// A server can say where it keeps its data (--dir, CONFIG SET): a restore must not follow it
// out of the container's volumes, nor through a link inside one. The refusal names the
// directory and comes before the service is stopped or anything is written.
func TestRedisRestoreConfinedWhereTheServerSays(t *testing.T) {
	volume := []container.MountPoint{{Destination: "/data", RW: true}}
	for _, tc := range []struct {
		name, dir, dbfilename, appendonly string
		links                             map[string]string
		want                              string
	}{
		{name: "outside the volumes", dir: "/usr/local/bin", dbfilename: "redis-server", appendonly: "no",
			want: "/usr/local/bin"},
		{name: "a link inside the volume", dir: "/data/sub/deeper", dbfilename: "dump.rdb", appendonly: "no",
			links: map[string]string{"/data/sub": "/usr/local/bin"}, want: "/data/sub"},
		{name: "a linked append-only directory", dir: "/data", dbfilename: "dump.rdb", appendonly: "yes",
			links: map[string]string{"/data/appendonlydir": "/etc"}, want: "/data/appendonlydir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := strategytest.NewFakeEngine()
			f.Mounts, f.Links = volume, tc.links
			f.Reply = redisReplies(tc.dir, tc.dbfilename, tc.appendonly)
			c := f.Container(t)
			data := strategy.Data{Reader: strings.NewReader("REDIS0011"), Size: 9,
				Source: strategy.Source{"dir": "/data", "dbfilename": "dump.rdb"}, Allowed: strategy.WritableMounts(c)}
			err := (&Strategy{}).Restore(context.Background(), c, data)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refusing") {
				t.Fatalf("restore: %v; want a refusal naming %s", err, tc.want)
			}
			if len(f.Written()) > 0 || f.Stops() > 0 {
				t.Errorf("stopped %d times, files written: %+v", f.Stops(), f.Written())
			}
		})
	}
}

// The same where the server says a directory inside the volume: the location is accepted.
func TestRedisLocationInsideAVolume(t *testing.T) {
	f := strategytest.NewFakeEngine()
	f.Mounts = []container.MountPoint{{Destination: "/data", RW: true}}
	f.Reply = redisReplies("/data", "dump.rdb", "yes")
	c := f.Container(t)
	loc, err := (&Strategy{}).location(context.Background(), c, strategy.Data{Allowed: strategy.WritableMounts(c)})
	if err != nil {
		t.Fatal(err)
	}
	if loc.dir != "/data" || loc.dbfilename != "dump.rdb" || loc.appenddirname != "appendonlydir" || loc.version != "7.0.15" {
		t.Errorf("location %+v", loc)
	}
}

// A stopped container cannot be asked: the manifest's dir is held to the same rule.
func TestRedisStoppedLocationConfined(t *testing.T) {
	f := strategytest.NewFakeEngine()
	f.Running = false
	f.Mounts = []container.MountPoint{{Destination: "/data", RW: true}}
	c := f.Container(t)
	_, err := (&Strategy{}).location(context.Background(), c, strategy.Data{Source: strategy.Source{"dir": "/usr/local/bin", "dbfilename": "redis-server"}, Allowed: strategy.WritableMounts(c)})
	if err == nil || !strings.Contains(err.Error(), "/usr/local/bin") {
		t.Fatalf("location: %v; want a refusal naming /usr/local/bin", err)
	}
}
