package worker

import (
	"context"
	"log/slog"
	"os"
	"runtime"

	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/worker/inplace"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/moby/moby/client"
)

// ForPlugin returns what volume backups and restores work beside the data with — this
// plugin's own binary as a one-file image (else the sidecar image of this release), and for
// backups in auto mode this process itself when the Engine's volumes are on this host — as
// DOCKER_BACKUP_WORKER says (auto, on, off), and whether a worker is required.
func ForPlugin(api client.APIClient, log *slog.Logger) (strategy.Worker, bool, error) {
	mode, err := ParseMode(os.Getenv(EnvMode))
	if err != nil {
		return nil, false, err
	}
	if mode == ModeOff {
		return nil, false, nil
	}
	rel, err := workerimage.ThisRelease()
	if err != nil {
		return nil, false, err
	}
	r := &Runner{Engine: api, Image: workerimage.PluginImage(api, rel, log), Owner: scratch.ProcessOwner(), Log: log}
	if runtime.GOOS == "linux" {
		// A socket beside the engine; elsewhere (Docker Desktop's VM) the attach stream.
		r.Channel = func(context.Context) (*Channel, error) { return HostChannel(), nil }
	}
	if mode == ModeAuto {
		r.Local = &inplace.Reader{Engine: api}
	}
	return r, mode == ModeOn, nil
}
