// Package sizes is detect's measure of the services backed up with the volume strategy: the
// size of their paths, with and without their exclusions (the label docker-backup.exclude
// and detect's --exclude), walked by the worker as a backup walks them, or else the Engine's
// own figures of their named volumes.
package sizes

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/moby/moby/client"
)

// Measurer measures services' volume backups.
type Measurer struct {
	// Worker walks the paths (nil: the worker is off); RequireWorker: it must.
	Worker        strategy.Worker
	RequireWorker bool
	// Usage gives the Engine's sizes of named volumes when the worker does not walk them.
	Usage *volume.VolumeUsage
	// Exclude are patterns to try beside each service's label (detect's --exclude).
	Exclude []string
	Log     *slog.Logger
}

// ForPlugin is the plugin's Measurer as DOCKER_BACKUP_WORKER says (worker.ForPlugin),
// trying the patterns exclude beside each service's label.
func ForPlugin(api client.APIClient, exclude []string, log *slog.Logger) (*Measurer, error) {
	wk, require, err := worker.ForPlugin(api, log)
	if err != nil {
		return nil, err
	}
	return &Measurer{Worker: wk, RequireWorker: require, Usage: &volume.VolumeUsage{API: api}, Exclude: exclude, Log: log}, nil
}

// Set sets d's volume size, that of c (nil m: nothing); a failure is a warning naming the
// service, and d's VolumeSizeError.
func (m *Measurer) Set(ctx context.Context, c *containers.Container, d *output.DetectedService, warn io.Writer) {
	if m == nil {
		return
	}
	size, err := m.Service(ctx, c, d.Strategies)
	if err != nil {
		d.VolumeSizeError = err.Error()
		output.Warning(warn, "%s: cannot measure its volumes: %v", c.Service, err)
		return
	}
	d.VolumeSize = size
}

// Service is the size of what a backup of c holds, or nil when c is not backed up with the
// volume strategy (its label docker-backup.strategy, else the first of cands, detect's).
func (m *Measurer) Service(ctx context.Context, c *containers.Container, cands []detect.Candidate) (*output.VolumeSize, error) {
	job, err := defaultJob(c)
	if err != nil {
		return nil, err
	}
	name := job.Strategy
	if name == "" && len(cands) > 0 {
		name = cands[0].Strategy
	}
	if strategies.Canonical(name) != "volume" {
		return nil, nil
	}
	v, err := volume.New(job.Paths, append(job.Exclude, m.Exclude...))
	if err != nil {
		return nil, err
	}
	v.Worker, v.RequireWorker, v.Log = m.Worker, m.RequireWorker, m.Log
	size, err := v.Measure(ctx, c, m.Usage)
	if err != nil {
		return nil, err
	}
	return convert(size), nil
}

// defaultJob is the job of c's labels without a job name: its strategy, paths and exclusions.
func defaultJob(c *containers.Container) (labels.Job, error) {
	jobs, errs := labels.Parse(c.Name, c.Labels, labels.Options{Strategies: strategies.Names(), Manual: true})
	for _, j := range jobs {
		if j.Name == labels.DefaultJob {
			return j, nil
		}
	}
	return labels.Job{}, errors.Join(errs...)
}

// convert is what detect prints of z.
func convert(z *volume.Size) *output.VolumeSize {
	out := &output.VolumeSize{Paths: z.Paths, Exclude: z.Exclude, Note: z.Why}
	if m := z.Measured; m != nil {
		out.Total = &output.Amount{Files: m.Files + m.ExcludedFiles, Bytes: m.Bytes + m.ExcludedBytes}
		if len(z.Exclude) > 0 {
			out.Kept = &output.Amount{Files: m.Files, Bytes: m.Bytes}
			out.LeftOut = &output.Amount{Files: m.ExcludedFiles, Bytes: m.ExcludedBytes}
		}
		return out
	}
	for _, p := range z.Volumes {
		e := output.EngineSize{Path: p.Path, Volume: p.Volume, Unknown: p.Unknown}
		if p.Unknown == "" {
			e.Bytes = &p.Bytes
		}
		out.EngineSizes = append(out.EngineSizes, e)
	}
	return out
}
