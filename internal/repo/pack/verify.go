package pack

import (
	"fmt"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Verify reads a whole pack's header, decodes every blob in it and checks it against its ID,
// and checks that the header lists every entry of want (what the index says).
func Verify(k *blob.Keys, p []byte, want []Entry) error {
	entries, err := Header(k, p)
	if err != nil {
		return err
	}
	inHeader := map[Entry]bool{}
	var buf []byte
	for _, e := range entries {
		inHeader[e] = true
		stored, _ := Stored(p, e)
		if buf, err = k.Decode(buf[:0], stored, e.Comp, int(e.Raw), e.ID); err != nil {
			return err
		}
	}
	for _, e := range want {
		if !inHeader[e] {
			return fmt.Errorf("the index lists blob %s at %d+%d, which the pack's header does not", e.ID, e.Offset, e.Length)
		}
	}
	return nil
}
