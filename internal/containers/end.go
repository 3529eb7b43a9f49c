package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// execMarkerEnv is set, with a random value, in the environment of a command that Exec must be
// able to end: the Engine API cannot end an exec, so a second exec finds the command, and every
// process that inherited its environment, by that value in /proc/PID/environ and signals them.
const execMarkerEnv = "DOCKER_BACKUP_EXEC_ID"

// CancelledError reports a command whose context ended before it did, and, for one run with
// ExecSpec.EndGrace, what ending it in the container did.
type CancelledError struct {
	Cmd       string
	Container string
	Err       error // the context's error
	// Ended says how the command was ended in the container ("" when it was not to be).
	Ended string
}

func (e *CancelledError) Error() string {
	msg := fmt.Sprintf("%s in %s: %v", e.Cmd, e.Container, e.Err)
	if e.Ended != "" {
		msg += "; " + e.Ended
	}
	return msg
}

func (e *CancelledError) Unwrap() error { return e.Err }

func newExecMarker() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// endScript signals every process whose environment holds the marker $2 with the signal $1
// ("0": none, only counted) and prints how many it found. It needs sh, tr and kill (a shell
// builtin); it runs as the container's user, the same as the command's.
const endScript = `sig=$1; id=$2; n=0
for p in /proc/[0-9]*; do
  case "$(tr '\0' '\n' < "$p/environ" 2>/dev/null)" in
  *"` + execMarkerEnv + `=$id"*) kill -s "$sig" "${p#/proc/}" 2>/dev/null && n=$((n+1)) ;;
  esac
done
echo "$n"`

// signalMarked sends sig to the processes marked with id and returns how many there were.
func (c *Container) signalMarked(ctx context.Context, id, sig string) (int, error) {
	out, err := c.Output(ctx, "sh", "-c", endScript, "sh", sig, id)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// endMarked ends the command marked with id and its descendants: SIGTERM, then SIGKILL to
// what is left after grace. It says what happened, for the command's error.
func (c *Container) endMarked(ctx context.Context, id string, grace time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, grace+time.Minute)
	defer cancel()
	n, err := c.signalMarked(ctx, id, "TERM")
	switch {
	case err != nil:
		return fmt.Sprintf("it may still be running in the container: the Engine API cannot end a command it runs, and ending it from a second command needs sh, tr and kill in the image (%v)", err)
	case n == 0:
		return "it had ended by then"
	}
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		if n, err = c.signalMarked(ctx, id, "0"); err == nil && n == 0 {
			return "it was ended in the container (SIGTERM)"
		}
	}
	if _, err := c.signalMarked(ctx, id, "KILL"); err != nil {
		return fmt.Sprintf("it may still be running in the container: it outlived SIGTERM for %s, and SIGKILL failed: %v", grace, err)
	}
	for range 10 {
		if n, err = c.signalMarked(ctx, id, "0"); err == nil && n == 0 {
			return fmt.Sprintf("it was ended in the container (SIGKILL, after SIGTERM was not enough in %s)", grace)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("it may still be running in the container: %d of its processes outlived SIGKILL", n)
}
