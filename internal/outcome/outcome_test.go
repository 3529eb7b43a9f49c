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

// Every code of the protocol is a row of the table (none falls to "failed" by accident), with
// its exit status and whether the plugin adds what failed; the same on the plugin's direct
// path (the engine's error) and its sidecar path (the code the sidecar answered).
func TestEveryCodeHasItsRow(t *testing.T) {
	for _, tc := range []struct {
		code  string
		exit  int
		plain bool
	}{
		{control.CodeCorrupt, ExitFailed, true},
		{control.CodeUntrusted, ExitFailed, true},
		{control.CodePartial, ExitPartial, false},
		{control.CodeRefused, ExitFailed, true},
		{control.CodeNotFound, ExitFailed, true},
		{control.CodeBusy, ExitFailed, true},
		{control.CodeInvalid, ExitFailed, true},
		{control.CodeFailed, ExitFailed, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			k := lookup(tc.code)
			if k.code != tc.code || k.exit != tc.exit || k.plain != tc.plain {
				t.Errorf("row %+v, want exit %d, plain %v", k, tc.exit, tc.plain)
			}
			answered := &control.Error{Code: tc.code, Message: "x"}
			for name, end := range map[string]func(error) (int, error){"backup": Backup, "verify": Verify, "restore": Restore} {
				exit, said := end(answered)
				wantExit := ExitFailed
				if name == "restore" {
					wantExit = tc.exit
				}
				if exit != wantExit && !(name != "restore" && tc.code == control.CodePartial && exit == ExitPartial) {
					t.Errorf("%s: exit %d, want %d", name, exit, wantExit)
				}
				if plain := said.Error() == "x"; plain != tc.plain {
					t.Errorf("%s says %q", name, said)
				}
			}
		})
	}
	if k := lookup("from a newer sidecar"); k.code != control.CodeFailed {
		t.Errorf("an unknown code is %q, want failed", k.code)
	}
}

// The words each operation adds to a failure that does not say it by itself.
func TestWords(t *testing.T) {
	cause := errors.New("disk full")
	for _, tc := range []struct {
		name string
		end  func(error) (int, error)
		err  error
		want string
	}{
		{"backup", Backup, cause, "backup failed, nothing was stored: disk full"},
		{"verify", Verify, cause, "verify could not run: disk full"},
		{"restore", Restore, cause, "restore failed: disk full"},
		{"restore, partly", Restore, &plan.RestoreError{Err: cause, Partial: true, State: "half the files"}, "restore failed, the service may be partly restored: disk full; half the files"},
		{"backup of a partial code", Backup, &control.Error{Code: control.CodePartial, Message: "x"}, "backup failed, nothing was stored: x"},
		{"not found says itself", Backup, fmt.Errorf("no service db: %w", containers.ErrNotFound), "no service db: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, said := tc.end(tc.err); said.Error() != tc.want {
				t.Errorf("said %q, want %q", said, tc.want)
			}
		})
	}
}

// A control.Error's code is its own, wrapped or not; one without a code is a failure.
func TestControlErrorsKeepTheirCode(t *testing.T) {
	if got := Code(fmt.Errorf("x: %w", &control.Error{Code: control.CodeBusy})); got != control.CodeBusy {
		t.Errorf("a wrapped control.Error: %q", got)
	}
	if got := Code(&control.Error{Message: "no code"}); got != control.CodeFailed {
		t.Errorf("a control.Error without code: %q", got)
	}
}
