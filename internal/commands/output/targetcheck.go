package output

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// CheckedStep is one step of `target check`: what was done, how long it took, and when it
// failed, why and what the credentials need for it.
type CheckedStep struct {
	Operation string  `json:"operation"`
	OK        bool    `json:"ok"`
	Seconds   float64 `json:"seconds"`
	Error     string  `json:"error,omitempty"`
	Needs     string  `json:"needs,omitempty"`
}

// Measured is the throughput `target check` saw: bytes written, read back and compared.
type Measured struct {
	Bytes           int64   `json:"bytes"`
	UploadSeconds   float64 `json:"upload_seconds"`
	DownloadSeconds float64 `json:"download_seconds"`
	Error           string  `json:"error,omitempty"`
}

// TargetChecked is the report of `target check`.
type TargetChecked struct {
	Target     string        `json:"target"`
	Steps      []CheckedStep `json:"steps"`
	Throughput *Measured     `json:"throughput,omitempty"`
	Ready      bool          `json:"ready"`
}

// TargetCheck prints a target check's report as a table or as JSON.
func TargetCheck(out io.Writer, r TargetChecked, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(out, "Checking %s\n", Clean(r.Target))
	for _, s := range r.Steps {
		took := roundTook(time.Duration(s.Seconds * float64(time.Second)))
		if s.OK {
			fmt.Fprintf(out, "  ok      %-18s %8v\n", s.Operation, took)
			continue
		}
		fmt.Fprintf(out, "  FAILED  %-18s %8v  %s\n", s.Operation, took, Clean(s.Error))
		if s.Needs != "" {
			fmt.Fprintf(out, "          %s\n", s.Needs)
		}
	}
	if m := r.Throughput; m != nil {
		if m.Error != "" {
			fmt.Fprintf(out, "  FAILED  throughput: %s\n", Clean(m.Error))
		} else {
			up := time.Duration(m.UploadSeconds * float64(time.Second))
			down := time.Duration(m.DownloadSeconds * float64(time.Second))
			fmt.Fprintf(out, "  upload    %s in %v: %s\n", Bytes(m.Bytes), up.Round(time.Millisecond), Rate(m.Bytes, up))
			fmt.Fprintf(out, "  download  %s in %v: %s (every byte compared)\n", Bytes(m.Bytes), down.Round(time.Millisecond), Rate(m.Bytes, down))
		}
	}
	if r.Ready {
		fmt.Fprintln(out, "The target is ready for backups.")
	}
	return nil
}

// roundTook rounds a step's time to what tells: microseconds below 10ms, else milliseconds.
func roundTook(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
