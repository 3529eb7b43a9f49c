package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker/go-units"
)

// recent bounds the one-off backups, restores and verifies the status lists.
const recent = 5

// Status writes the sidecar's status (sidecar names it) as people read it: the sidecar and its
// targets, a table of its jobs, what it did lately, and what needs attention. Ages are told
// as of now, times in now's location.
func Status(out io.Writer, sidecar string, st *control.Status, now time.Time) error {
	statusHeader(out, sidecar, st)
	if err := jobsTable(out, st, now); err != nil {
		return err
	}
	if len(st.Jobs) == 0 {
		fmt.Fprintln(out, "No jobs: label a service with docker-backup.enable=true and docker-backup.schedule (see README).")
	}
	loc := now.Location()
	recentOneOff(out, st.OneOff, loc)
	recentRestores(out, st.Restores, loc)
	recentVerifies(out, st.Verifies, loc)
	attention(out, st)
	return nil
}

func statusHeader(out io.Writer, sidecar string, st *control.Status) {
	events := "events: connected"
	if !st.EventsConnected {
		events = "events: DISCONNECTED (resyncing periodically)"
	}
	host := "host " + st.Host
	if st.Node != "" {
		host = "swarm node " + st.Node
	}
	fmt.Fprintf(out, "Sidecar %s (%s, %s, version %s, %s, signing key %s)\n", sidecar, st.Scope(), host, st.Version, events, st.SigningKey)
	for _, t := range st.Targets {
		held := ""
		if !t.Listed.IsZero() {
			held = fmt.Sprintf("  (%d backups, %s)", t.Backups, Bytes(t.Bytes))
		}
		fmt.Fprintf(out, "  target %-10s %s%s\n", t.Name, t.URL, held)
	}
	fmt.Fprintln(out)
}

func jobsTable(out io.Writer, st *control.Status, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "SERVICE/JOB\tSTRATEGY\tSCHEDULE\tNEXT RUN\tLAST RUN\tSIZE\tLAST SUCCESS\tLAST VERIFY\tRETENTION\tTARGET"
	if st.Node != "" {
		head += "\tNODE"
	}
	fmt.Fprintln(w, head)
	for _, j := range st.Jobs {
		row := jobRow(j, st.AllProjects, now)
		if st.Node != "" {
			row = append(row, j.Node)
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(st.Elsewhere) > 0 {
		fmt.Fprintln(out, "\nBacked up by the sidecar of another swarm node (ask it with that node's Docker context):")
		for _, e := range st.Elsewhere {
			fmt.Fprintf(out, "  %s  on node %s\n", e.Service, e.Node)
		}
	}
	return nil
}

// jobRow is a job's row of the status table.
func jobRow(j control.JobStatus, allProjects bool, now time.Time) []string {
	name := j.Service + "/" + j.Job
	if allProjects {
		name = j.Project + "/" + name
	}
	strat := j.Strategy
	if strat == "" {
		strat = "auto"
	}
	when := j.ScheduleText
	if when == "" {
		when = j.Schedule
	}
	next := "-"
	if !j.Next.IsZero() {
		next = "in " + units.HumanDuration(j.Next.Sub(now)) + " (" + j.Next.In(now.Location()).Format("Jan 2 15:04") + ")"
	}
	last, size, success := "never", "-", "never"
	if j.Running {
		last = "running now"
	} else if j.Last != nil {
		last = string(j.Last.Status) + ", " + Ago(now, j.Last.StartedAt)
		if j.Last.Status != control.Success && j.Last.Error != "" {
			last += ": " + FirstLine(j.Last.Error, 60)
		}
	}
	if j.LastSuccess != nil {
		size = Bytes(j.LastSuccess.Size)
		success = Ago(now, j.LastSuccess.FinishedAt)
	}
	ret := j.Retention
	if ret == "" {
		ret = "keep all"
	}
	if j.Untrusted > 0 {
		ret += fmt.Sprintf(" (%d untrusted left alone)", j.Untrusted)
	}
	if j.Incremental {
		strat += " (incremental)"
	}
	return []string{name, strat, when, next, last, size, success, verifyText(now, j), ret, j.Target}
}

// verifyText says how the job's last verify went, and how often it runs.
func verifyText(now time.Time, j control.JobStatus) string {
	text := "-"
	switch v := j.LastVerify; {
	case v == nil && j.Verify != "":
		text = "not yet"
	case v == nil:
	case v.Status == control.Running:
		text = "running now"
	case v.Status == control.Passed:
		text = "passed, " + Ago(now, v.FinishedAt)
	default:
		text = string(v.Status) + ", " + Ago(now, v.FinishedAt)
		if v.Summary != "" {
			text += ": " + FirstLine(v.Summary, 50)
		}
	}
	if j.Verify != "" {
		text += " (" + j.Verify + ")"
	}
	return text
}

func stamp(t time.Time, loc *time.Location) string { return t.In(loc).Format("2006-01-02 15:04:05") }

func recentOneOff(out io.Writer, runs []control.RunInfo, loc *time.Location) {
	if len(runs) == 0 {
		return
	}
	fmt.Fprintln(out, "\nRecent one-off backups:")
	for _, r := range runs[:min(len(runs), recent)] {
		line := fmt.Sprintf("  %s  %s: %s", stamp(r.StartedAt, loc), r.Service, r.Status)
		if r.Key != "" && r.Status == control.Success {
			line += ", " + r.Key + " (" + Bytes(r.Size) + ")"
		}
		if r.Status != control.Success && r.Error != "" {
			line += " (" + FirstLine(r.Error, 80) + ")"
		}
		fmt.Fprintln(out, line)
	}
}

func recentRestores(out io.Writer, restores []control.RestoreInfo, loc *time.Location) {
	if len(restores) == 0 {
		return
	}
	fmt.Fprintln(out, "\nRecent restores:")
	for _, r := range restores[:min(len(restores), recent)] {
		status := r.Status
		if r.Partial {
			status += ", THE SERVICE MAY BE PARTLY RESTORED"
		}
		line := fmt.Sprintf("  %s  %s into %s: %s", stamp(r.StartedAt, loc), r.Key, r.Service, status)
		if r.Error != "" {
			line += " (" + FirstLine(r.Error, 80) + ")"
		}
		fmt.Fprintln(out, line)
	}
}

func recentVerifies(out io.Writer, verifies []control.VerifyInfo, loc *time.Location) {
	if len(verifies) == 0 {
		return
	}
	fmt.Fprintln(out, "\nRecent verifies:")
	for _, v := range verifies[:min(len(verifies), recent)] {
		line := fmt.Sprintf("  %s  %s of %s: %s", stamp(v.StartedAt, loc), v.Key, v.Service, v.Status)
		if v.Status == control.Passed {
			line += fmt.Sprintf(" (%d checks)", v.Checks)
		}
		if v.Summary != "" {
			line += " (" + FirstLine(v.Summary, 80) + ")"
		}
		fmt.Fprintln(out, line)
	}
}

// attention writes what needs someone: backups no trusted key signed, unfinished recovery,
// services without a schedule, invalid labels.
func attention(out io.Writer, st *control.Status) {
	for _, j := range st.Jobs {
		if j.Untrusted > 0 {
			fmt.Fprintf(out, "\nWarning: %d backups of %s/%s on target %s are not signed by a key the sidecar trusts: retention never counts nor deletes them. Whoever wrote them can write to the target; remove them if they are not yours (docker backup ls shows them).\n",
				j.Untrusted, j.Project, j.Service, j.Target)
		}
	}
	if len(st.Recovery) > 0 {
		fmt.Fprintf(out, "\nRecovery after a crash is not finished (retried until it is):\n")
		for _, r := range st.Recovery {
			fmt.Fprintf(out, "  %s\n", r)
		}
	}
	if len(st.Unscheduled) > 0 {
		fmt.Fprintf(out, "\nEnabled without a schedule (backed up only by hand, `docker backup run SERVICE`): %s\n", strings.Join(st.Unscheduled, ", "))
	}
	if len(st.Problems) > 0 {
		fmt.Fprintf(out, "\n%d invalid label(s), those jobs are not scheduled:\n", len(st.Problems))
		for _, p := range st.Problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
}
