package agent

import (
	"bytes"
	"encoding/json"
	"strings"
)

// ReportReader parses the worker's Report lines as the caller reads them: Progress gets the raw
// bytes so far and OnReport every report up to the final one; anything else (a panic) is kept
// for the error (Tail).
type ReportReader struct {
	Progress func(int64)
	OnReport func(Report)
	buf      []byte
	last     *Report
	other    bytes.Buffer
}

func (r *ReportReader) Write(p []byte) (int, error) {
	r.buf = append(r.buf, p...)
	for {
		i := bytes.IndexByte(r.buf, '\n')
		if i < 0 {
			break
		}
		line := r.buf[:i]
		r.buf = r.buf[i+1:]
		var rep Report
		switch {
		case json.Unmarshal(line, &rep) != nil:
			if r.other.Len() < 4<<10 {
				r.other.Write(line)
				r.other.WriteByte('\n')
			}
		case r.last != nil && (r.last.Done || r.last.Error != ""):
			// The final report is the outcome: nothing after it changes that.
		default:
			r.last = &rep
			if r.Progress != nil && rep.Raw > 0 {
				r.Progress(rep.Raw)
			}
			if r.OnReport != nil {
				r.OnReport(rep)
			}
		}
	}
	if len(r.buf) > 64<<10 {
		r.other.Write(r.buf[:min(len(r.buf), 4<<10)])
		r.buf = r.buf[:0]
	}
	return len(p), nil
}

// Last is the newest report, the final one once it came (nil: none yet).
func (r *ReportReader) Last() *Report { return r.last }

// Tail is what the worker wrote that is not a report (a panic's message).
func (r *ReportReader) Tail() string {
	return strings.TrimSpace(r.other.String() + string(r.buf))
}
