package output

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// BackedUp is a backup just made, by the plugin or by its sidecar: what its result says.
type BackedUp struct {
	Service  string // the service backed up, as people name it
	Strategy string
	Duration time.Duration
	// Sidecar names the sidecar that made it; "" when the plugin did.
	Sidecar string
	Key     string
	// Targets are where it was to be stored, each with why it is not there ("" stored).
	Targets []Stored
	Size    int64 // stored
	RawSize int64 // of data
	// Via says in words how the data was read (a volume backup's data path); "" unknown.
	Via string
	// Excluded are the patterns a volume backup left out.
	Excluded   []string
	SHA256     string
	KeyID      string   // the key that signed the manifest
	Recipients []string // whom it is encrypted for
	Pruned     []string // backups retention removed after it
	// Snapshot names an incremental backup (snapshot:SHORTID); Reused counts its files taken
	// from the parent, Parent names it.
	Snapshot      string
	Parent        string
	Files, Reused int64
}

// Stored is a target of a backup, and why the backup is not there ("" it is).
type Stored struct {
	Target string
	Failed string
}

// Backup writes a backup's result.
func Backup(w io.Writer, b BackedUp) {
	by := ""
	if b.Sidecar != "" {
		by = " (by sidecar " + b.Sidecar + ")"
	}
	fmt.Fprintf(w, "Backed up %s with the %s strategy in %s%s\n", b.Service, b.Strategy, b.Duration.Round(10*time.Millisecond), by)
	fmt.Fprintf(w, "  backup   %s\n", b.Key)
	for _, t := range b.Targets {
		if t.Failed != "" {
			fmt.Fprintf(w, "  target   %s: FAILED, nothing stored there: %s\n", t.Target, t.Failed)
		} else {
			fmt.Fprintf(w, "  target   %s\n", t.Target)
		}
	}
	if b.Snapshot != "" {
		fmt.Fprintf(w, "  snapshot %s (incremental", b.Snapshot)
		if b.Parent != "" {
			fmt.Fprintf(w, ", parent %s", b.Parent)
		}
		fmt.Fprintf(w, ")\n  size     %s new stored, %s of data", Bytes(b.Size), Bytes(b.RawSize))
		if b.Files > 0 {
			fmt.Fprintf(w, " in %d files (%d unchanged)", b.Files, b.Reused)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "  size     %s stored, %s of data (%.1fx)\n", Bytes(b.Size), Bytes(b.RawSize), float64(b.RawSize)/float64(max(b.Size, 1)))
	}
	fmt.Fprintf(w, "  rate     %s\n", Rate(b.RawSize, b.Duration))
	if b.Via != "" {
		fmt.Fprintf(w, "  via      %s\n", b.Via)
	}
	if len(b.Excluded) > 0 {
		fmt.Fprintf(w, "  excluded %s\n", strings.Join(b.Excluded, ", "))
	}
	if b.SHA256 != "" {
		fmt.Fprintf(w, "  sha256   %s\n", b.SHA256)
	}
	if b.KeyID != "" {
		fmt.Fprintf(w, "  signed   key %s\n", b.KeyID)
	}
	if len(b.Recipients) > 0 {
		fmt.Fprintf(w, "  encrypted for %s\n", strings.Join(b.Recipients, ", "))
	}
	for _, k := range b.Pruned {
		fmt.Fprintf(w, "  pruned   %s\n", k)
	}
}

// Restored is a restore just made, by the plugin or by its sidecar.
type Restored struct {
	Key    string // the backup restored
	Into   string // the service, as people name it
	SHA256 string // of the stored bytes, verified
	// KeyID is the key whose signature was verified ("" an unsigned backup, allowed).
	KeyID string
	// Sidecar names the sidecar that restored it; "" when the plugin did.
	Sidecar string
}

// Restore writes a restore's result.
func Restore(w io.Writer, r Restored) {
	how := "sha256 " + artifact.ShortSHA(r.SHA256) + " verified"
	if r.SHA256 == "" {
		how = "every chunk verified" // a snapshot's
	}
	if r.KeyID != "" {
		how += ", signed by key " + r.KeyID
	}
	if r.Sidecar != "" {
		how += ", by sidecar " + r.Sidecar
	}
	fmt.Fprintf(w, "Restored %s into %s (%s)\n", r.Key, r.Into, how)
}
