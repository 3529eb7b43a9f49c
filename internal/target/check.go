package target

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
)

// CheckStep is one operation of Check and how it went.
type CheckStep struct {
	Operation string // "write", "list", "read", "delete"
	Err       error
}

// Requirer is implemented by targets that can say, in their own words, what the credentials
// need for an operation of Check ("write", "list", "read", "delete"): shown when it fails.
type Requirer interface {
	Requirement(operation string) string
}

// Requirement is what t's credentials need for operation, or "" when t does not say.
func Requirement(t Target, operation string) string {
	if s, ok := t.(*sub); ok {
		return Requirement(s.t, operation)
	}
	if r, ok := t.(Requirer); ok {
		return r.Requirement(operation)
	}
	return ""
}

// Check writes, lists, reads back and deletes a small probe object, and reports each step, so
// that a missing permission is named before the first backup needs it.
func Check(ctx context.Context, t Target) []CheckStep {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := "docker-backup-check/probe-" + hex.EncodeToString(b)
	body := []byte("docker-backup target check " + key + "\n")
	steps := []CheckStep{
		{Operation: "write"}, {Operation: "list"}, {Operation: "read"}, {Operation: "delete"},
	}
	if _, err := t.Put(ctx, key, bytes.NewReader(body)); err != nil {
		steps[0].Err = err
		return steps[:1]
	}
	objs, err := Collect(t.List(ctx, "docker-backup-check/"))
	if err == nil {
		found := false
		for _, o := range objs {
			found = found || o.Key == key
		}
		if !found {
			err = fmt.Errorf("the probe object %s was written but is not listed", key)
		}
	}
	steps[1].Err = err
	rc, err := t.Get(ctx, key)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rc)
		rc.Close()
		if err == nil && !bytes.Equal(got, body) {
			err = fmt.Errorf("the probe object read back differs from what was written")
		}
	}
	steps[2].Err = err
	steps[3].Err = t.Delete(ctx, key)
	return steps
}
