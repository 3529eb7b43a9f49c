package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker/go-units"
)

// Listed is one backup as ls shows it.
type Listed struct {
	artifact.Summary
	Target string `json:"target,omitempty"` // the sidecar's target name; empty for a direct listing
}

// Backups writes a listing as a table or, for format "json", as JSON; withTargets adds the
// sidecar's JOB and TARGET columns. Ages are told as of now.
func Backups(out io.Writer, rows []Listed, withTargets bool, format string, now time.Time) error {
	if format == "json" {
		if rows == nil {
			rows = []Listed{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := "BACKUP\tSERVICE\tSTRATEGY\tCREATED\tSIZE"
	if withTargets {
		header += "\tJOB\tTARGET"
	}
	fmt.Fprintln(w, header+"\tNOTE")
	for _, r := range rows {
		m := r.Summary
		created := units.HumanDuration(now.Sub(m.CreatedAt)) + " ago"
		var notes []string
		if m.Untrusted != "" {
			notes = append(notes, trustNote(m.Untrusted))
		}
		if m.Encrypted {
			notes = append(notes, "encrypted (age)")
		}
		if m.Snapshot {
			notes = append(notes, "incremental (size: what it added)")
		}
		if m.InFuture(now) {
			created = "in " + units.HumanDuration(m.CreatedAt.Sub(now))
			notes = append(notes, "dated in the future")
		}
		note := strings.Join(notes, ", ")
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", Clean(m.Key), Clean(m.Describe()), Clean(m.Strategy), created, Bytes(m.Size))
		if withTargets {
			job := m.Job
			if job == "" {
				job = "(manual)"
			}
			fmt.Fprintf(w, "\t%s\t%s", Clean(job), Clean(r.Target))
		}
		fmt.Fprintf(w, "\t%s\n", Clean(note))
	}
	return w.Flush()
}

// trustNote shortens why a manifest is not trusted for the NOTE column.
func trustNote(reason string) string {
	switch {
	case strings.Contains(reason, "not signed"):
		return "unsigned"
	case strings.Contains(reason, "another key"):
		return "other key"
	}
	return "bad signature"
}
