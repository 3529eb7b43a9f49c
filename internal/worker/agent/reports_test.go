package agent

import (
	"fmt"
	"testing"
)

func TestReportReader(t *testing.T) {
	var seen []int64
	r := &ReportReader{Progress: func(n int64) { seen = append(seen, n) }}
	_, _ = r.Write([]byte(`{"raw":10}` + "\n" + `{"raw":20,"do`))
	_, _ = r.Write([]byte(`ne":true}` + "\npanic: boom\n"))
	if fmt.Sprint(seen) != "[10 20]" || r.Last() == nil || !r.Last().Done || r.Tail() != "panic: boom" {
		t.Errorf("progress %v, last %+v, tail %q", seen, r.Last(), r.Tail())
	}
}

// TestReportReaderKeepsTheFinalReport: a report after the final one (a progress tick that
// raced with the end) does not change the outcome, done or failed.
func TestReportReaderKeepsTheFinalReport(t *testing.T) {
	for _, final := range []string{`{"raw":20,"done":true}`, `{"raw":20,"error":"disk full"}`} {
		r := &ReportReader{}
		_, _ = r.Write([]byte(`{"raw":10}` + "\n" + final + "\n" + `{"raw":30}` + "\nnot json\n"))
		if r.Last() == nil || r.Last().Raw != 20 || (!r.Last().Done && r.Last().Error == "") || r.Tail() != "not json" {
			t.Errorf("after %s and a progress report: last %+v, tail %q", final, r.Last(), r.Tail())
		}
	}
}
