package output

import (
	"strings"
	"testing"
	"time"
)

// A backup's result reads the same whether the plugin or its sidecar made it; what one of
// them does not know is left out.
func TestBackup(t *testing.T) {
	var direct, sidecar strings.Builder
	Backup(&direct, BackedUp{Service: "shop/db (container shop-db-1)", Strategy: "postgres", Duration: 1500 * time.Millisecond,
		Key: "shop/db/k.sql.zst", Targets: []Stored{{Target: "/b"}, {Target: "/full", Failed: "no space left on device"}},
		Size: 1 << 20, RawSize: 4 << 20, Via: "a worker container beside the data", SHA256: "ab", KeyID: "k1", Recipients: []string{"age1x"}})
	want := `Backed up shop/db (container shop-db-1) with the postgres strategy in 1.5s
  backup   shop/db/k.sql.zst
  target   /b
  target   /full: FAILED, nothing stored there: no space left on device
  size     1MiB stored, 4MiB of data (4.0x)
  rate     2.667MiB/s
  via      a worker container beside the data
  sha256   ab
  signed   key k1
  encrypted for age1x
`
	if direct.String() != want {
		t.Errorf("direct:\n%s\nwant\n%s", direct.String(), want)
	}
	Backup(&sidecar, BackedUp{Service: "shop/db", Strategy: "postgres", Duration: time.Second, Sidecar: "shop-backup-1",
		Key: "shop/db/k.sql.zst", Targets: []Stored{{Target: "default"}}, Size: 10, RawSize: 10, SHA256: "ab", Pruned: []string{"shop/db/old"}})
	want = `Backed up shop/db with the postgres strategy in 1s (by sidecar shop-backup-1)
  backup   shop/db/k.sql.zst
  target   default
  size     10B stored, 10B of data (1.0x)
  rate     10B/s
  sha256   ab
  pruned   shop/db/old
`
	if sidecar.String() != want {
		t.Errorf("sidecar:\n%s\nwant\n%s", sidecar.String(), want)
	}
}

func TestRestore(t *testing.T) {
	var b strings.Builder
	Restore(&b, Restored{Key: "k", Into: "shop/db", SHA256: "0123456789abcdef", KeyID: "k1"})
	Restore(&b, Restored{Key: "k", Into: "shop/db", SHA256: "0123456789abcdef", Sidecar: "sc"})
	want := "Restored k into shop/db (sha256 0123456789ab verified, signed by key k1)\n" +
		"Restored k into shop/db (sha256 0123456789ab verified, by sidecar sc)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
