package target

import (
	"context"
	"errors"
	"io"
	"testing"
)

// lostReply stores what it is given, then says the connection was lost: the reply to a
// rename (SFTP) or to a CompleteMultipartUpload (S3) that never came back.
type lostReply struct{ *Local }

func (l lostReply) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	n, err := l.Local.Put(ctx, key, r)
	if err != nil {
		return n, err
	}
	return n, errors.New("the connection to the server was lost")
}

// Red team: `docker backup target check` on a connection that drops as its probe is
// published: the write step fails, Check returns at once, and the probe it did store is left
// under docker-backup-check/ — listed, and swept by nothing (the orphan clean-up is per
// service). Check should delete (or at least name) its probe whatever the write step said.
func TestRedTeamCheckLeavesItsProbeWhenTheWriteReplyIsLost(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps := Check(context.Background(), lostReply{l})
	if len(steps) == 0 || steps[0].Err == nil {
		t.Fatalf("steps: %+v", steps)
	}
	left, err := Collect(l.List(context.Background(), checkPrefix))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range left {
		t.Errorf("left on the target after the check: %s (the step said: %v)", o.Key, steps[0].Err)
	}
}
