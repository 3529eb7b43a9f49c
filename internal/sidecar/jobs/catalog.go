package jobs

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/sidecar/catalogcopy"
)

// CatalogJobName is the scheduler's name for the catalog's own backup.
const CatalogJobName = "catalog-backup"

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

// catalogCopier copies the catalog to the default target.
func (r *Runner) catalogCopier() *catalogcopy.Copier {
	return &catalogcopy.Copier{Catalog: r.opts.Catalog, Target: r.opts.Targets["default"], Dir: r.catalogDir(),
		Signer: r.opts.Signer, StateDir: r.opts.StateDir, Log: r.log}
}

// BackupCatalog copies the catalog to the default target and keeps the newest few copies.
func (r *Runner) BackupCatalog(ctx context.Context) error { return r.catalogCopier().Backup(ctx) }

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
