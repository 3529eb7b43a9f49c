package incremental

import (
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// ParentMetadata streams the regular files of the snapshot parent to w as the worker of an
// incremental backup reads them (package meta): in tree order, which is the worker's walk
// order. Memory holds the trees of the directories on the current path only.
func ParentMetadata(ctx context.Context, rd *repo.Reader, parent *repo.Snapshot, w io.Writer) error {
	e := meta.NewEncoder(w)
	err := rd.Walk(ctx, parent.Tree, func(p string, n *tree.Node) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n.Type != tree.File {
			return nil
		}
		return e.Add(meta.Record{Path: p, Size: n.Size, MTime: n.MTime, CTime: n.CTime, Inode: n.Inode, Dev: n.Device})
	})
	if err != nil {
		return fmt.Errorf("the parent snapshot %s's file metadata: %w", parent.ID, err)
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("sending the parent snapshot %s's file metadata: %w", parent.ID, err)
	}
	return nil
}
