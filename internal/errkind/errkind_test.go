package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestSilent(t *testing.T) {
	kind, cause := errors.New("the kind"), errors.New("the cause")
	err := fmt.Errorf("opening x: %w%w", cause, Silent(kind))
	if err.Error() != "opening x: the cause" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, kind) || !errors.Is(err, cause) {
		t.Error("the kind or the cause is not found")
	}
}
