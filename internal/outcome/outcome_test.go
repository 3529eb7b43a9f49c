package outcome

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/target"
)

// The plugin's direct path (an engine error) and its sidecar path (the code the sidecar
// answered) end a restore alike: same exit status, same words.
func TestRestoreEndsAlikeOnBothPaths(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   string
		exit   int
		prefix string
	}{
		{fmt.Errorf("x: %w", artifact.ErrCorrupt), control.CodeCorrupt, ExitFailed, ""},
		{fmt.Errorf("x: %w", plan.ErrNotTrusted), control.CodeUntrusted, ExitFailed, ""},
		{&plan.RestoreError{Err: errors.New("x"), Partial: true}, control.CodePartial, ExitPartial, "restore failed, the service may be partly restored: "},
		{&plan.RestoreError{Err: errors.New("x")}, control.CodeFailed, ExitFailed, "restore failed: "},
		{fmt.Errorf("x: %w", plan.ErrRefused), control.CodeRefused, ExitFailed, ""},
		{fmt.Errorf("x: %w", pipeline.ErrUntouched), control.CodeRefused, ExitFailed, ""},
		{fmt.Errorf("x: %w", containers.ErrNotFound), control.CodeNotFound, ExitFailed, ""},
		{fmt.Errorf("x: %w", target.ErrNotExist), control.CodeNotFound, ExitFailed, ""},
		{errors.New("x"), control.CodeFailed, ExitFailed, "restore failed: "},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
		}
		answered := Classify(tc.err)
		for path, err := range map[string]error{"direct": tc.err, "sidecar": answered} {
			exit, said := Restore(err)
			if exit != tc.exit || said.Error() != tc.prefix+tc.err.Error() {
				t.Errorf("%s %v: exit %d, %q; want %d, %q", path, tc.err, exit, said, tc.exit, tc.prefix+tc.err.Error())
			}
		}
	}
}

func TestClassifyKeepsACode(t *testing.T) {
	busy := &control.Error{Code: control.CodeBusy, Message: "busy"}
	if got := Classify(fmt.Errorf("wrapped: %w", busy)); got != busy {
		t.Errorf("Classify = %v", got)
	}
	if exit, said := Backup(busy); exit != ExitFailed || said.Error() != "busy" {
		t.Errorf("Backup(busy) = %d, %v", exit, said)
	}
	if _, said := Backup(errors.New("disk full")); !strings.HasPrefix(said.Error(), "backup failed, nothing was stored: ") {
		t.Errorf("Backup = %v", said)
	}
	if _, said := Verify(errors.New("no scratch")); !strings.HasPrefix(said.Error(), "verify could not run: ") {
		t.Errorf("Verify = %v", said)
	}
}
