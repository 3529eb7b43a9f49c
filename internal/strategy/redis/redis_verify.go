package redis

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// NewCount counts the snapshot's keys per database by reading the RDB as it streams. An RDB
// with a value type this version does not know is not counted (and not refused: the server
// that wrote it knows it).
func (r *Strategy) NewCount() strategy.Count {
	return strategy.NewStreamCount(func(rd io.Reader) (*artifact.Contents, error) {
		keys, expiring, err := rdbKeys(rd)
		if errors.Is(err, errRDBUnknown) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &artifact.Contents{Keys: keys, Expiring: expiring}, nil
	})
}

// NeedsServer: the restore asks the server where it keeps its data.
func (r *Strategy) NeedsServer() bool { return true }

// Ready waits until the server answers PING.
func (r *Strategy) Ready(ctx context.Context, c *containers.Container, _ strategy.Source) error {
	return strategy.WaitFor(ctx, c, time.Minute, "the Redis server", func(ctx context.Context) error {
		_, err := r.client(ctx, c)
		return err
	})
}

// Found reads the keys per database from INFO keyspace.
func (r *Strategy) Found(ctx context.Context, c *containers.Container, _ strategy.Source, _ *artifact.Contents) (*artifact.Contents, error) {
	rc, err := r.client(ctx, c)
	if err != nil {
		return nil, err
	}
	ks, err := rc.info(ctx, "keyspace")
	if err != nil {
		return nil, err
	}
	found := &artifact.Contents{Keys: map[string]int64{}, Expiring: map[string]int64{}}
	for db, v := range ks {
		if !strings.HasPrefix(db, "db") {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			k, num, _ := strings.Cut(part, "=")
			n, _ := strconv.ParseInt(num, 10, 64)
			switch k {
			case "keys":
				found.Keys[db] = n
			case "expires":
				found.Expiring[db] = n
			}
		}
	}
	return found, nil
}
