// Package catalogcopy keeps copies of the sidecar's catalog on its default target: a
// consistent copy now and then, the newest few kept, only the sidecar's own ever deleted.
package catalogcopy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"regexp"
	"sort"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Keep is how many catalog copies are kept on the target.
const Keep = 7

// Copier copies a catalog to Dir on Target.
type Copier struct {
	Catalog  *catalog.Catalog
	Target   target.Target
	Dir      string               // e.g. _catalog/PROJECT
	Signer   *artifact.SigningKey // tags the copies (tells them from anything else in Dir)
	StateDir string               // holds the temporary copy
	Log      *slog.Logger
}

// Backup copies the catalog consistently (VACUUM INTO, to a temporary file of its own) to the
// target and keeps the newest Keep copies. The target's manifests remain the source of truth:
// a catalog is rebuilt from them when no copy is at hand.
func (c *Copier) Backup(ctx context.Context) error {
	f, err := os.CreateTemp(c.StateDir, ".catalog-copy-*.db")
	if err != nil {
		return fmt.Errorf("making a temporary copy of the catalog: %w", err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp) // VACUUM INTO writes a new file
	defer os.Remove(tmp)
	if err := c.Catalog.Copy(ctx, tmp); err != nil {
		return err
	}
	if f, err = os.Open(tmp); err != nil {
		return err
	}
	defer f.Close()
	key := c.Key(time.Now())
	if _, err := c.Target.Put(ctx, key, f); err != nil {
		return fmt.Errorf("storing the catalog backup: %w", err)
	}
	c.Log.Info("catalog backed up", "key", key, "target", c.Target.String())
	return c.prune(ctx)
}

// copyName is a catalog copy's name: its time and a tag of the sidecar's key over it
// (artifact.SigningKey.Tag), which tells the sidecar's own copies from anything else.
var copyName = regexp.MustCompile(`^catalog-(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{16})\.db$`)

// Key is the key of a copy made at at.
func (c *Copier) Key(at time.Time) string {
	stamp := at.UTC().Format("20060102T150405.000Z")
	return path.Join(c.Dir, "catalog-"+stamp+"-"+c.Signer.Tag(c.Dir+"/"+stamp)+".db")
}

// prune keeps the newest Keep of the sidecar's own copies and deletes older ones of its own
// only: what someone else put there is neither counted nor deleted.
func (c *Copier) prune(ctx context.Context) error {
	var own []string
	others := 0
	for o, err := range c.Target.List(ctx, c.Dir+"/") {
		if err != nil {
			return err
		}
		m := copyName.FindStringSubmatch(path.Base(o.Key))
		if m != nil && path.Dir(o.Key) == c.Dir && c.Signer.Tag(c.Dir+"/"+m[1]) == m[2] {
			own = append(own, o.Key)
		} else {
			others++
		}
	}
	if others > 0 {
		c.Log.Warn("objects in the catalog's directory that are not this sidecar's copies are left alone (remove them by hand if they are not yours)", "dir", c.Dir, "count", others)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(own)))
	for i := Keep; i < len(own); i++ {
		if err := c.Target.Delete(ctx, own[i]); err != nil {
			return err
		}
	}
	return nil
}
