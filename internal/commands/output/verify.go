package output

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/docker-backup/docker-backup/internal/verify"
)

// maxPassedShown bounds the passed checks the table lists; failed ones are always listed.
const maxPassedShown = 30

// VerifyReport writes a verify's report to out as a table or, for format "json", as JSON,
// and its warnings to warn.
func VerifyReport(out, warn io.Writer, r *verify.Report, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		verifyTable(out, r)
	}
	for _, w := range r.Warnings {
		Warning(warn, "%s", w)
	}
	return nil
}

func verifyTable(out io.Writer, r *verify.Report) {
	fmt.Fprintf(out, "Backup:   %s\nService:  %s (%s)\nImage:    %s\n", r.Backup, r.Service, r.Strategy, r.Image+" ("+shortID(r.ImageID)+")")
	for _, n := range r.Notes {
		fmt.Fprintf(out, "Note:     %s\n", n)
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHECK\tEXPECTED\tFOUND\tRESULT")
	shown, hidden := 0, 0
	for _, c := range r.Checks {
		if c.Passed && shown >= maxPassedShown {
			hidden++
			continue
		}
		result := "PASS"
		if !c.Passed {
			result = "FAIL"
		}
		if c.Note != "" {
			result += " (" + c.Note + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, oneLine(c.Expected), oneLine(c.Found), result)
		if c.Passed {
			shown++
		}
	}
	_ = w.Flush()
	if hidden > 0 {
		fmt.Fprintf(out, "(%d more checks passed: --format json lists every check)\n", hidden)
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(out, "\n%s in %s\n", verdict, time.Duration(r.Duration*float64(time.Second)).Round(100*time.Millisecond))
}
