package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

type statusOptions struct {
	project string
	format  string
}

func newStatusCommand(dockerCli command.Cli) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show the sidecar's jobs: schedule, next run, last result, size and age",
		Long: `Show the jobs of a project's sidecar: each service's job, its schedule in words, the next
run, the last run's result, size and age, and any invalid labels. Needs the sidecar.`,
		Example: `  docker backup status
  docker backup status --project myapp --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	return cmd
}

func runStatus(ctx context.Context, dockerCli command.Cli, opts statusOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	sc, err := requireSidecar(ctx, api, opts.project)
	if err != nil {
		return err
	}
	var st control.Status
	if err := sc.Get(ctx, control.PathStatus, nil, &st); err != nil {
		return err
	}
	out := dockerCli.Out()
	if opts.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	events := "events: connected"
	if !st.EventsConnected {
		events = "events: DISCONNECTED (resyncing periodically)"
	}
	fmt.Fprintf(out, "Sidecar %s (%s, host %s, version %s, %s, signing key %s)\n", sc.Name(), st.Scope(), st.Host, st.Version, events, st.SigningKey)
	for _, t := range st.Targets {
		held := ""
		if !t.Listed.IsZero() {
			held = fmt.Sprintf("  (%d backups, %s)", t.Backups, humanBytes(t.Bytes))
		}
		fmt.Fprintf(out, "  target %-10s %s%s\n", t.Name, t.URL, held)
	}
	fmt.Fprintln(out)
	now := time.Now()
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE/JOB\tSTRATEGY\tSCHEDULE\tNEXT RUN\tLAST RUN\tSIZE\tLAST SUCCESS\tLAST VERIFY\tRETENTION\tTARGET")
	for _, j := range st.Jobs {
		name := j.Service + "/" + j.Job
		if st.AllProjects {
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
			next = "in " + units.HumanDuration(j.Next.Sub(now)) + " (" + j.Next.Local().Format("Jan 2 15:04") + ")"
		}
		last, size, success := "never", "-", "never"
		if j.Running {
			last = "running now"
		} else if j.Last != nil {
			last = j.Last.Status + ", " + ago(now, j.Last.StartedAt)
			if j.Last.Status != "success" && j.Last.Error != "" {
				last += ": " + firstLine(j.Last.Error, 60)
			}
		}
		if j.LastSuccess != nil {
			size = humanBytes(j.LastSuccess.Size)
			success = ago(now, j.LastSuccess.FinishedAt)
		}
		ret := j.Retention
		if ret == "" {
			ret = "keep all"
		}
		if j.Untrusted > 0 {
			ret += fmt.Sprintf(" (%d untrusted left alone)", j.Untrusted)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, strat, when, next, last, size, success, verifyText(now, j), ret, j.Target)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(st.Jobs) == 0 {
		fmt.Fprintln(out, "No jobs: label a service with docker-backup.enable=true and docker-backup.schedule (see README).")
	}
	if len(st.OneOff) > 0 {
		fmt.Fprintln(out, "\nRecent one-off backups:")
		for _, r := range st.OneOff[:min(len(st.OneOff), 5)] {
			line := fmt.Sprintf("  %s  %s: %s", r.StartedAt.Local().Format("2006-01-02 15:04:05"), r.Service, r.Status)
			if r.Key != "" && r.Status == "success" {
				line += ", " + r.Key + " (" + humanBytes(r.Size) + ")"
			}
			if r.Status != "success" && r.Error != "" {
				line += " (" + firstLine(r.Error, 80) + ")"
			}
			fmt.Fprintln(out, line)
		}
	}
	if len(st.Restores) > 0 {
		fmt.Fprintln(out, "\nRecent restores:")
		for _, r := range st.Restores[:min(len(st.Restores), 5)] {
			status := r.Status
			if r.Partial {
				status += ", THE SERVICE MAY BE PARTLY RESTORED"
			}
			line := fmt.Sprintf("  %s  %s into %s: %s", r.StartedAt.Local().Format("2006-01-02 15:04:05"), r.Key, r.Service, status)
			if r.Error != "" {
				line += " (" + firstLine(r.Error, 80) + ")"
			}
			fmt.Fprintln(out, line)
		}
	}
	if len(st.Verifies) > 0 {
		fmt.Fprintln(out, "\nRecent verifies:")
		for _, v := range st.Verifies[:min(len(st.Verifies), 5)] {
			line := fmt.Sprintf("  %s  %s of %s: %s", v.StartedAt.Local().Format("2006-01-02 15:04:05"), v.Key, v.Service, v.Status)
			if v.Status == "passed" {
				line += fmt.Sprintf(" (%d checks)", v.Checks)
			}
			if v.Summary != "" {
				line += " (" + firstLine(v.Summary, 80) + ")"
			}
			fmt.Fprintln(out, line)
		}
	}
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
	return nil
}

// verifyText says how the job's last verify went, and how often it runs.
func verifyText(now time.Time, j control.JobStatus) string {
	text := "-"
	switch v := j.LastVerify; {
	case v == nil && j.Verify != "":
		text = "not yet"
	case v == nil:
	case v.Status == "running":
		text = "running now"
	case v.Status == "passed":
		text = "passed, " + ago(now, v.FinishedAt)
	default:
		text = v.Status + ", " + ago(now, v.FinishedAt)
		if v.Summary != "" {
			text += ": " + firstLine(v.Summary, 50)
		}
	}
	if j.Verify != "" {
		text += " (" + j.Verify + ")"
	}
	return text
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
