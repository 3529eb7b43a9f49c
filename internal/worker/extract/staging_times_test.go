//go:build linux

package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStagingKeepsVolumeTimes: removing the staging directory after a staged restore leaves
// the volume directory with the archive's time (committed) or its own (not committed).
func TestStagingKeepsVolumeTimes(t *testing.T) {
	own, archived := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2010, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, commit := range []bool{true, false} {
		vol := filepath.Join(t.TempDir(), "vol")
		if err := os.Mkdir(vol, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(vol, own, own); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		name := strings.TrimPrefix(vol, "/")
		tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: archived})
		tw.WriteHeader(&tar.Header{Name: name + "/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5, ModTime: archived})
		tw.Write([]byte("hello"))
		tw.Close()

		st, err := NewStaging([]string{vol}, 0)
		if err != nil {
			t.Fatal(err)
		}
		x := New([]string{vol}, []string{vol}, true, st)
		if err := x.Run(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := x.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		x.Close()
		st.Remove()

		fi, err := os.Stat(vol)
		if err != nil {
			t.Fatal(err)
		}
		want := own
		if commit {
			want = archived
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("committed %v: the volume's time is %s, want %s", commit, fi.ModTime(), want)
		}
		entries, _ := os.ReadDir(vol)
		if got := len(entries); got != map[bool]int{true: 1, false: 0}[commit] {
			t.Errorf("committed %v: the volume holds %d entries", commit, got)
		}
	}
}
