package target

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
)

// recording is a remote target that records how a Put was paced.
type recording struct {
	Target
	paced  bool   // PutPaced was called (the S3 way)
	reader string // the reader Put was given, by its type
	key    string
}

func (r *recording) Put(ctx context.Context, key string, rd io.Reader) (int64, error) {
	r.key, r.reader = key, fmt.Sprintf("%T", rd)
	return io.Copy(io.Discard, rd)
}

type pacedRecording struct{ recording }

func (p *pacedRecording) PutPaced(ctx context.Context, key string, rd io.Reader, _ *bandwidth.Limiter) (int64, error) {
	p.paced = true
	return p.Put(ctx, key, rd)
}

func TestPutLimited(t *testing.T) {
	ctx := context.Background()
	lim := bandwidth.NewLimiter(64 << 20)
	body := func() io.Reader { return strings.NewReader("data") }

	plain := &recording{}
	if _, err := PutLimited(ctx, plain, "k", body(), lim); err != nil || plain.reader != "*bandwidth.reader" {
		t.Errorf("a remote target's Put read %q (%v), want the limiter's reader", plain.reader, err)
	}
	paced := &pacedRecording{}
	view, _ := Sub(paced, "site")
	if _, err := PutLimited(ctx, view, "k", body(), lim); err != nil || !paced.paced || paced.key != "site/k" || paced.reader != "*strings.Reader" {
		t.Errorf("S3 behind a prefix: paced %v, key %q, reader %q (%v); want paced by its sends, the body as it is", paced.paced, paced.key, paced.reader, err)
	}
	none := &recording{}
	if _, err := PutLimited(ctx, none, "k", body(), nil); err != nil || none.reader != "*strings.Reader" {
		t.Errorf("without a cap: %q", none.reader)
	}
	local, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if Capped(local) || !Capped(plain) {
		t.Error("a directory target is capped, or a remote one is not")
	}
	if n, err := PutLimited(ctx, local, "a/k", body(), lim); err != nil || n != 4 {
		t.Errorf("a directory target: %d, %v", n, err)
	}
}
