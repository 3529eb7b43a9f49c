package jobs

import (
	"errors"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/pipeline"
)

func TestOutcomePerTarget(t *testing.T) {
	res := &pipeline.BackupResult{Key: "k", Manifest: &artifact.Manifest{Size: 3, SHA256: "abc"}, Stored: []string{"default"},
		Failed: map[string]error{"offsite": errors.New("no space left on device")}}
	partial := &pipeline.TargetsError{Stored: res.Stored, Failed: res.Failed}
	for _, tc := range []struct {
		name, tgt string
		res       *pipeline.BackupResult
		err       error
		only      bool
		status    control.Outcome
		key       string // the run's artifact key
		cleanup   string
	}{
		{"stored where the others failed", "default", res, partial, true, control.Success, "k", ""},
		{"the target that failed", "offsite", res, partial, true, control.Failed, "", "k"},
		{"stored, the post command failed", "default", &pipeline.BackupResult{Key: "k", Manifest: res.Manifest}, errors.New("post command failed"), false, control.Failed, "k", ""},
		{"nothing stored", "default", nil, errors.New("pg_dump exited 1"), false, control.Failed, "", "k"},
	} {
		got := outcome(tc.tgt, "k", tc.res, tc.err, tc.only)
		if got.Status != tc.status || got.ArtifactKey != tc.key || got.Cleanup != tc.cleanup {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
}
