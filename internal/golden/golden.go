// Package golden compares what a test produced with a file under the package's testdata
// directory, so that a change of output is a reviewed diff. Run the package's tests with
// -update to rewrite the files instead (each test package declares that flag, see Check).
package golden

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Check compares got with testdata/name; with update, it writes got there instead. A test
// package declares the flag once:
//
//	var update = flag.Bool("update", false, "rewrite the golden files under testdata")
//
// and calls golden.Check(t, "status.golden", out, *update).
func Check(t testing.TB, name string, got []byte, update bool) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run the test with -update to accept the new output, and review the diff):\n%s", file, Diff(string(want), string(got)))
	}
}

// Diff shows, line by line, where got differs from want: "-" want's line, "+" got's, the
// equal lines around them as they are.
func Diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		wok, gok := i < len(w), i < len(g)
		if wok {
			wl = w[i]
		}
		if gok {
			gl = g[i]
		}
		switch {
		case wok && gok && wl == gl:
			fmt.Fprintf(&b, "  %s\n", wl)
		default:
			if wok {
				fmt.Fprintf(&b, "- %q\n", wl)
			}
			if gok {
				fmt.Fprintf(&b, "+ %q\n", gl)
			}
		}
	}
	return b.String()
}
