package snapshots

import (
	"context"
	"errors"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/target"
)

// List lists the snapshots of t's repository as listings show backups (none when t has no
// repository). What cannot be listed — a snapshot no trusted key signed, an encrypted
// repository without its key or an identity — is returned as problems, as a listing of full
// backups reports unreadable manifests.
func List(ctx context.Context, t target.Target, keys Keys, a repo.Access) ([]artifact.Summary, []string, error) {
	r, err := Open(ctx, t, keys, a)
	if errors.Is(err, ErrNone) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, []string{err.Error()}, nil
	}
	snaps, err := r.Snapshots(ctx)
	var problems []string
	if err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				problems = append(problems, e.Error())
			}
		} else {
			return nil, nil, err
		}
	}
	out := make([]artifact.Summary, 0, len(snaps))
	for _, s := range snaps {
		sum := Summary(s)
		sum.Encrypted = r.Encrypted()
		out = append(out, sum)
	}
	return out, problems, nil
}

// Usage counts the snapshots of t's repository of project ("" every project) and the bytes they
// added (0, 0 when t has none or it cannot be read).
func Usage(ctx context.Context, t target.Target, keys Keys, a repo.Access, project string) (n int, size int64) {
	snaps, _, err := List(ctx, t, keys, a)
	if err != nil {
		return 0, 0
	}
	for _, s := range snaps {
		if project == "" || s.Project == project {
			n, size = n+1, size+s.Size
		}
	}
	return n, size
}
