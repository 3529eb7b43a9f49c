// Package outcome is the one table of how an operation failed: an error's control code (what
// the sidecar answers the plugin with), and a code's exit status and words (what the plugin
// says and exits with), the same whether the plugin or its sidecar did the work.
package outcome

import (
	"errors"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Exit statuses of the plugin.
const (
	// ExitFailed ends every failure the table gives no other status.
	ExitFailed = 1
	// ExitPartial ends a restore that failed after it began changing the service, which the
	// engine could not undo (MySQL, MongoDB, volumes).
	ExitPartial = 3
	// ExitVerifyFailed ends a verify that ran and failed: the backup did not restore, or
	// restored to something else than it recorded.
	ExitVerifyFailed = 4
)

// kind is a row of the table.
type kind struct {
	code string
	// is says whether an error of the engine is of this kind; nil: only a control.Error with
	// the code is.
	is func(error) bool
	// exit is the plugin's exit status.
	exit int
	// plain: the error says what happened by itself; the plugin does not add that the
	// operation failed.
	plain bool
}

// table is searched in order: the first kind an error is decides.
var table = []kind{
	{code: control.CodeCorrupt, is: isAny(artifact.ErrCorrupt), exit: ExitFailed, plain: true},
	{code: control.CodeUntrusted, is: isAny(plan.ErrNotTrusted), exit: ExitFailed, plain: true},
	{code: control.CodePartial, is: partlyRestored, exit: ExitPartial},
	{code: control.CodeRefused, is: isAny(plan.ErrRefused, pipeline.ErrUntouched), exit: ExitFailed, plain: true},
	{code: control.CodeNotFound, is: isAny(containers.ErrNotFound, target.ErrNotExist), exit: ExitFailed, plain: true},
	{code: control.CodeBusy, exit: ExitFailed, plain: true},
	{code: control.CodeInvalid, exit: ExitFailed, plain: true},
	{code: control.CodeFailed, exit: ExitFailed},
}

func isAny(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

func partlyRestored(err error) bool {
	var re *plan.RestoreError
	return errors.As(err, &re) && re.Partial
}

// Code is err's control code: the code of a control.Error (the sidecar's answer, or a
// refusal that names its code), else the first kind of the table err is, else
// control.CodeFailed.
func Code(err error) string {
	var ce *control.Error
	if errors.As(err, &ce) && ce.Code != "" {
		return ce.Code
	}
	for _, k := range table {
		if k.is != nil && k.is(err) {
			return k.code
		}
	}
	return control.CodeFailed
}

// Classify is err as the sidecar answers it: a *control.Error with err's code and message.
func Classify(err error) *control.Error {
	var ce *control.Error
	if errors.As(err, &ce) && ce.Code != "" {
		return ce
	}
	return &control.Error{Code: Code(err), Message: err.Error()}
}

func lookup(code string) kind {
	for _, k := range table {
		if k.code == code {
			return k
		}
	}
	return table[len(table)-1]
}

// Restore is a failed restore as the plugin ends it: the exit status of err's code, and err
// said to have failed the restore (and, partly restored, what that left) unless it says so
// itself.
func Restore(err error) (exit int, said error) {
	return report(err, "restore failed", "restore failed, the service may be partly restored")
}

// Backup is a backup that stored nothing as the plugin ends it (see Restore).
func Backup(err error) (exit int, said error) {
	return report(err, "backup failed, nothing was stored", "")
}

// Verify is a verify that could not run as the plugin ends it (see Restore); one that ran
// and failed ends with ExitVerifyFailed.
func Verify(err error) (exit int, said error) {
	return report(err, "verify could not run", "")
}

func report(err error, failed, partly string) (int, error) {
	k := lookup(Code(err))
	switch {
	case k.code == control.CodePartial && partly != "":
		return k.exit, fmt.Errorf("%s: %w", partly, err)
	case k.plain:
		return k.exit, err
	}
	return k.exit, fmt.Errorf("%s: %w", failed, err)
}
