package jobs

import (
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/target"
)

// CatalogJobName is the scheduler's name for the catalog's own backup.
const CatalogJobName = "catalog-backup"

// catalogCopies is how many catalog backups are kept on the default target.
const catalogCopies = 7

// catalogDir is where catalog backups go on the default target.
func (r *Runner) catalogDir() string {
	scope := r.opts.Project
	if r.opts.AllProjects {
		scope = "all-projects"
	}
	if r.opts.Node != "" {
		// A swarm's nodes share a prefix: each its own catalog copies.
		scope += "@" + r.opts.Node
	}
	return path.Join("_catalog", KeyPart(scope))
}

// BackupCatalog copies the catalog consistently (VACUUM INTO, to a temporary file of its own)
// to the default target and keeps the newest few copies. The target's manifests remain the
// source of truth: Rebuild restores the catalog from them when no copy is at hand.
func (r *Runner) BackupCatalog(ctx context.Context) error {
	f, err := os.CreateTemp(r.opts.StateDir, ".catalog-copy-*.db")
	if err != nil {
		return fmt.Errorf("making a temporary copy of the catalog: %w", err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp) // VACUUM INTO writes a new file
	defer os.Remove(tmp)
	if err := r.opts.Catalog.Copy(ctx, tmp); err != nil {
		return err
	}
	if f, err = os.Open(tmp); err != nil {
		return err
	}
	defer f.Close()
	tgt := r.opts.Targets["default"]
	key := r.catalogCopyKey(time.Now())
	if _, err := tgt.Put(ctx, key, f); err != nil {
		return fmt.Errorf("storing the catalog backup: %w", err)
	}
	r.log.Info("catalog backed up", "key", key, "target", tgt.String())
	return r.pruneCatalogCopies(ctx, tgt)
}

// catalogCopyName is a catalog copy's name: its time and a tag of the sidecar's key over it
// (artifact.SigningKey.Tag), which tells the sidecar's own copies from anything else.
var catalogCopyName = regexp.MustCompile(`^catalog-(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{16})\.db$`)

func (r *Runner) catalogCopyKey(at time.Time) string {
	stamp := at.UTC().Format("20060102T150405.000Z")
	return path.Join(r.catalogDir(), "catalog-"+stamp+"-"+r.opts.Signer.Tag(r.catalogDir()+"/"+stamp)+".db")
}

// pruneCatalogCopies keeps the newest catalogCopies of the sidecar's own copies and deletes
// older ones of its own only: what someone else put there is neither counted nor deleted.
func (r *Runner) pruneCatalogCopies(ctx context.Context, tgt target.Target) error {
	var own []string
	others := 0
	for o, err := range tgt.List(ctx, r.catalogDir()+"/") {
		if err != nil {
			return err
		}
		m := catalogCopyName.FindStringSubmatch(path.Base(o.Key))
		if m != nil && path.Dir(o.Key) == r.catalogDir() && r.opts.Signer.Tag(r.catalogDir()+"/"+m[1]) == m[2] {
			own = append(own, o.Key)
		} else {
			others++
		}
	}
	if others > 0 {
		r.log.Warn("objects in the catalog's directory that are not this sidecar's copies are left alone (remove them by hand if they are not yours)", "dir", r.catalogDir(), "count", others)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(own)))
	for i := catalogCopies; i < len(own); i++ {
		if err := tgt.Delete(ctx, own[i]); err != nil {
			return err
		}
	}
	return nil
}

// Rebuild adds to the catalog every backup a job made that the targets hold (their
// manifests), for a catalog that was lost or started empty. It returns how many it added.
func (r *Runner) Rebuild(ctx context.Context) (int, error) {
	cat := r.opts.Catalog
	jobs, err := cat.Jobs(ctx)
	if err != nil {
		return 0, err
	}
	// A job's backups on its target; a job with several targets is a member job per target,
	// named JOB@TARGET in the catalog beyond the first.
	ids, targetOf := map[string]int64{}, map[string]string{}
	for _, j := range jobs {
		ids[jobKey(j.Project, j.Service, j.Name)] = j.ID
		targetOf[jobKey(j.Project, j.Service, j.Name)] = j.Target
	}
	added := 0
	for _, name := range r.TargetNames() {
		found, err := listing.List(ctx, r.opts.Targets[name], r.usagePrefix(), r.opts.Keys)
		if err != nil {
			return added, fmt.Errorf("listing target %s: %w", name, err)
		}
		// Only what a trusted key signed becomes a run: a forged manifest never shows as a
		// success in the status.
		f := selection.Filter{Project: r.opts.Project}
		if r.opts.AllProjects {
			f.Project = ""
		}
		for _, m := range f.Select(found.Backups).Usable {
			if m.Job == "" {
				continue
			}
			job := m.Job
			if t, ok := targetOf[jobKey(m.Project, m.Service, job)]; ok && t != name {
				job = memberOf(job, name)
			}
			key := jobKey(m.Project, m.Service, job)
			id, ok := ids[key]
			if !ok {
				if id, err = cat.UpsertJob(ctx, catalog.Job{Project: m.Project, Service: m.Service, Name: job, Strategy: m.Strategy, Target: name}); err != nil {
					return added, err
				}
				ids[key], targetOf[key] = id, name
			}
			ok, err := cat.ImportRun(ctx, catalog.Run{JobID: id, StartedAt: m.CreatedAt,
				FinishedAt: m.CreatedAt.Add(time.Duration(m.DurationMS) * time.Millisecond), Size: m.Size, SHA256: m.SHA256, ArtifactKey: m.Key})
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

// KeyPart makes a safe key component of a name (a host, a project).
func KeyPart(s string) string {
	p := strings.Trim(notKeyChar.ReplaceAllString(s, "-"), ".-")
	if p == "" {
		return "docker-host"
	}
	return p
}

var notKeyChar = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
