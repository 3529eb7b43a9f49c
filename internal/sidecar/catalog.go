package sidecar

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/engine"
)

// catalogJobName is the scheduler's name for the catalog's own backup.
const catalogJobName = "catalog-backup"

// catalogCopies is how many catalog backups are kept on the default target.
const catalogCopies = 7

// catalogDir is where catalog backups go on the default target.
func (d *Daemon) catalogDir() string {
	scope := d.cfg.Project
	if d.cfg.AllProjects {
		scope = "all-projects"
	}
	return path.Join("_catalog", hostPrefix(scope))
}

// BackupCatalog copies the catalog consistently (VACUUM INTO) to the default target and
// keeps the newest few copies. The target's manifests remain the source of truth: Rebuild
// restores the catalog from them when no copy is at hand.
func (d *Daemon) BackupCatalog(ctx context.Context) error {
	tmp := filepath.Join(d.cfg.StateDir, "catalog-copy.db")
	_ = os.Remove(tmp)
	defer os.Remove(tmp)
	if err := d.cat.Copy(ctx, tmp); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	tgt := d.targets["default"]
	key := path.Join(d.catalogDir(), "catalog-"+time.Now().UTC().Format("20060102T150405.000Z")+".db")
	if _, err := tgt.Put(ctx, key, f); err != nil {
		return fmt.Errorf("storing the catalog backup: %w", err)
	}
	d.log.Info("catalog backed up", "key", key, "target", tgt.String())
	objects, err := tgt.List(ctx, d.catalogDir()+"/")
	if err != nil {
		return err
	}
	var keys []string
	for _, o := range objects {
		if strings.HasPrefix(path.Base(o.Key), "catalog-") {
			keys = append(keys, o.Key)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for i := catalogCopies; i < len(keys); i++ {
		if err := tgt.Delete(ctx, keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// Rebuild adds to the catalog every backup a job made that the targets hold (their
// manifests), for a catalog that was lost or started empty. It returns how many it added.
func (d *Daemon) Rebuild(ctx context.Context) (int, error) {
	jobs, err := d.cat.Jobs(ctx)
	if err != nil {
		return 0, err
	}
	ids := map[string]int64{}
	for _, j := range jobs {
		ids[j.Project+"/"+j.Service+"/"+j.Name] = j.ID
	}
	added := 0
	for _, name := range d.cfg.TargetNames() {
		listing, err := engine.List(ctx, d.targets[name], "")
		if err != nil {
			return added, fmt.Errorf("listing target %s: %w", name, err)
		}
		for _, m := range listing.Backups {
			if m.Job == "" || (!d.cfg.AllProjects && m.Project != d.cfg.Project) {
				continue
			}
			key := m.Project + "/" + m.Service + "/" + m.Job
			id, ok := ids[key]
			if !ok {
				if id, err = d.cat.UpsertJob(ctx, catalog.Job{Project: m.Project, Service: m.Service, Name: m.Job, Strategy: m.Strategy, Target: name}); err != nil {
					return added, err
				}
				ids[key] = id
			}
			ok, err := d.cat.ImportRun(ctx, catalog.Run{JobID: id, StartedAt: m.CreatedAt,
				FinishedAt: m.CreatedAt.Add(time.Duration(m.DurationMS) * time.Millisecond), Size: m.Size, SHA256: m.SHA256, ArtifactKey: m.Artifact})
			if err != nil {
				return added, err
			}
			if ok {
				added++
			}
		}
	}
	return added, nil
}
