package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker-backup/docker-backup/internal/control"
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

// ctl, which the plugin runs in the sidecar's container, sends one request to the control
// socket in the state directory and prints the answer as it came; a status other than 2xx
// fails it after the answer (which says why, with its code) is printed.
func TestCtl(t *testing.T) {
	state := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(state, control.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.Method + " " + r.URL.String() {
		case "GET /v1/status":
			fmt.Fprint(w, `{"version":"v1"}`)
		case "GET /v1/backups?service=db":
			fmt.Fprint(w, `[]`)
		case "POST /v1/run":
			if string(body) != `{"service":` {
				t.Errorf("body %q", body)
			}
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"reading the request: unexpected EOF","code":"invalid"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	for _, tc := range []struct {
		args      []string
		out, fail string
	}{
		{[]string{"get", "/v1/status"}, `{"version":"v1"}`, ""},
		{[]string{"GET", "/v1/backups?service=db"}, `[]`, ""},
		{[]string{"POST", "/v1/run", `{"service":`}, `{"error":"reading the request: unexpected EOF","code":"invalid"}`, "the sidecar answered 400 Bad Request"},
		{[]string{"GET", "/v1/nope"}, "404 page not found\n", "the sidecar answered 404 Not Found"},
		{[]string{"GET"}, "", "usage: sidecar ctl METHOD PATH [JSON-BODY]"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := ctl(state, tc.args, &out)
			if out.String() != tc.out || (err == nil) != (tc.fail == "") || (err != nil && err.Error() != tc.fail) {
				t.Errorf("printed %q, %v; want %q, %q", out.String(), err, tc.out, tc.fail)
			}
		})
	}
	if err := ctl(t.TempDir(), []string{"GET", "/v1/status"}, io.Discard); err == nil || !strings.Contains(err.Error(), "the sidecar is not answering on") {
		t.Errorf("no sidecar: %v", err)
	}
}
