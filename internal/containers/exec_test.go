package containers

import (
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 16}
	tb.Write([]byte("first line\nsecond line\n"))
	tb.Write([]byte("ERROR: boom\n"))
	if got := tb.String(); got != "ERROR: boom" {
		t.Errorf("tail = %q", got)
	}
	e := &ExitError{Cmd: "pg_dump", Code: 1, Stderr: "no such database"}
	if !strings.Contains(e.Error(), "pg_dump exited with code 1: no such database") {
		t.Errorf("ExitError = %q", e.Error())
	}
}
