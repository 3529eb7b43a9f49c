package incremental

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestPipe(t *testing.T) {
	data := make([]byte, 5<<20+123)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	r, w := Pipe(3, 64<<10)
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(200<<10))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[n:]
		}
		w.Close()
	}()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, len(data))
	}

	// The writer's error reaches the reader after the data; the reader's stops the writer.
	r, w = Pipe(2, 10)
	boom := errors.New("boom")
	go func() { w.Write([]byte("hello")); w.CloseWithError(boom) }()
	if got, err := io.ReadAll(r); string(got) != "hello" || err != boom {
		t.Fatalf("read %q, %v; want hello, boom", got, err)
	}
	r, w = Pipe(1, 4)
	r.CloseWithError(boom)
	if _, err := w.Write(make([]byte, 100)); err != boom {
		t.Fatalf("a write after the reader stopped: %v, want boom", err)
	}
}
