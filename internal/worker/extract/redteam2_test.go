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

// TestRedteam2CalledOffStagingRewindsServiceChange: a staged restore stages while the service
// runs (minutes, for a large volume), and a restore called off removes what it staged, then
// sets the volume directory's times back to those it had before the staging directory was
// made. A change the service made meanwhile at the volume's root (a file created, renamed or
// deleted there: a database's new segment, a lock file) is then rewound too: the directory's
// mtime is older than its newest entry, and whoever relies on it (a cache, a sync tool, make)
// takes the directory for unchanged. Expected: the times are put back only when nothing but
// the staging directory changed them.
func TestRedteam2CalledOffStagingRewindsServiceChange(t *testing.T) {
	own := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
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
	tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: own})
	tw.WriteHeader(&tar.Header{Name: name + "/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5, ModTime: own})
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
	// The service, running while the restore stages, writes a new file at the volume's root.
	if err := os.WriteFile(filepath.Join(vol, "service.log"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(vol, "service.log"))
	if err != nil {
		t.Fatal(err)
	}
	written := fi.ModTime()
	// The restore is called off (a damaged blob, the user): no commit.
	x.Close()
	st.Remove()

	vi, err := os.Stat(vol)
	if err != nil {
		t.Fatal(err)
	}
	if vi.ModTime().Before(written) {
		t.Errorf("the volume directory's mtime is %s, older than the entry the service made in it at %s: the called-off restore rewound the service's change", vi.ModTime(), written)
	}
}
