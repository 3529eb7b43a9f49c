package packages

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Same inputs, same bytes, for both formats.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "plugin")
	_ = os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	m := Meta{Version: "v1.2.3-rc.1", Homepage: "https://example.invalid", License: "NOASSERTION", Maintainer: "m", MTime: time.Unix(1700000000, 0)}
	for _, f := range []string{"deb", "rpm"} {
		var out [2][]byte
		for i := range out {
			file := filepath.Join(dir, FileName(m.Version, "arm64", f))
			if err := Build(file, f, bin, "arm64", m); err != nil {
				t.Fatal(err)
			}
			out[i], _ = os.ReadFile(file)
		}
		if len(out[0]) == 0 || !bytes.Equal(out[0], out[1]) {
			t.Errorf("two %s builds differ", f)
		}
	}
	if n := FileName("v1.2.3", "amd64", "deb"); n != "docker-backup_1.2.3_amd64.deb" {
		t.Errorf("FileName = %s", n)
	}
	if err := Build(filepath.Join(dir, "x"), "apk", bin, "amd64", m); err == nil || !strings.Contains(err.Error(), `"apk"`) {
		t.Errorf("apk: %v", err)
	}
}
