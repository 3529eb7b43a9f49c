package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A refused socket names the group to add; other failures say what to check.
func TestEngineUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(sock)
	gid := fmt.Sprint(info.Sys().(*syscall.Stat_t).Gid)
	err := engineUnreachable("unix://"+sock, fmt.Errorf("dial: %w", os.ErrPermission))
	for _, want := range []string{"no access to the Docker socket " + sock, `group_add: ["` + gid + `"]`, "--group-add " + gid, `user: "0"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if !errors.Is(err, os.ErrPermission) {
		t.Error("the cause is not wrapped")
	}
	err = engineUnreachable("tcp://10.0.0.1:2375", errors.New("connection refused"))
	if !strings.Contains(err.Error(), "cannot reach the Docker engine at tcp://10.0.0.1:2375") || strings.Contains(err.Error(), "group_add") {
		t.Errorf("a TCP engine: %v", err)
	}
}

func TestPrintVersion(t *testing.T) {
	var b bytes.Buffer
	if err := printVersion(nil, &b); err != nil || !strings.Contains(b.String(), "Version:   dev\n") || !strings.Contains(b.String(), "Platform:  ") {
		t.Errorf("text: %q, %v", b.String(), err)
	}
	b.Reset()
	var info struct{ Version, Go, Platform string }
	if err := printVersion([]string{"--format", "json"}, &b); err != nil || json.Unmarshal(b.Bytes(), &info) != nil || info.Version != "dev" || info.Go == "" {
		t.Errorf("json: %q, %v", b.String(), err)
	}
	if err := printVersion([]string{"--format", "xml"}, &b); err == nil || !strings.Contains(err.Error(), "--format text|json") {
		t.Errorf("xml: %v", err)
	}
}
