package sidecarclient

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/labels"
)

// The plugin takes a container for a sidecar exactly when labels.IsSidecar does: the one
// rule, whatever the label's value.
func TestFindUsesTheSidecarRule(t *testing.T) {
	for _, v := range []string{"true", "True", "1", "false", ""} {
		t.Run(v, func(t *testing.T) {
			sc := enginetest.Service("shop", "backup", enginetest.WithLabel(labels.Sidecar, v))
			e := enginetest.New(sc)
			got, err := Find(context.Background(), e, "shop")
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != labels.IsSidecar(sc.Labels) {
				t.Errorf("found %v, but IsSidecar says %v", got != nil, labels.IsSidecar(sc.Labels))
			}
		})
	}
}

// Find takes the running sidecar of the project, or of the only project that has one.
func TestFind(t *testing.T) {
	e := enginetest.New(
		enginetest.Service("shop", "backup", enginetest.Sidecar()),
		enginetest.Service("blog", "backup", enginetest.Sidecar()),
		enginetest.Service("wiki", "backup", enginetest.Sidecar(), enginetest.Stopped()),
		enginetest.Service("wiki", "db"),
		enginetest.Service("solo", "db"),
	)
	ctx := context.Background()
	for _, tc := range []struct {
		project, want, says string
	}{
		{project: "shop", want: "shop-backup-1"},
		{project: "wiki"}, // its sidecar is stopped
		{project: "none"},
		{says: "sidecars run in several compose projects (blog, shop): choose one with --project"},
	} {
		t.Run(tc.project, func(t *testing.T) {
			sc, err := Find(ctx, e, tc.project)
			switch {
			case tc.says != "":
				if err == nil || err.Error() != tc.says {
					t.Errorf("error %v, want %q", err, tc.says)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "" && sc != nil:
				t.Errorf("found %s", sc.Name())
			case tc.want != "" && (sc == nil || sc.Name() != tc.want || sc.Project() != tc.project):
				t.Errorf("found %v, want %s", sc, tc.want)
			}
		})
	}
	if sc, err := OfService(ctx, e, "", "db"); err != nil || sc != nil {
		t.Errorf("OfService of a service in two projects: %v, %v", sc, err)
	}
	if _, err := Require(ctx, e, "wiki"); err == nil || !strings.Contains(err.Error(), "no running docker-backup sidecar in compose project wiki") {
		t.Errorf("Require: %v", err)
	}
	if sc, err := OfService(ctx, enginetest.New(enginetest.Service("shop", "db"), enginetest.Service("shop", "backup", enginetest.Sidecar())), "", "db"); err != nil || sc == nil || sc.Name() != "shop-backup-1" {
		t.Errorf("OfService: %v, %v", sc, err)
	}
}

// The plugin reads the sidecar's answers as `/sidecar ctl` prints them: JSON for a request, one
// event per line for a stream; a failure as the control.Error the sidecar answered.
func TestGetAndStream(t *testing.T) {
	const failure = `{"error":"no target \"nope\" on the sidecar","code":"not_found"}`
	for _, tc := range []struct {
		name   string
		answer enginetest.ExecResult
		stream bool
		want   string // the status's version, or the result's key
		code   string // the failure's
		says   string
		logged string
	}{
		{name: "get", answer: enginetest.ExecResult{Stdout: `{"version":"v1"}`}, want: "v1"},
		{name: "get refused", answer: enginetest.ExecResult{Stdout: failure, ExitCode: 1}, code: control.CodeNotFound, says: `sidecar shop-backup-1: no target "nope" on the sidecar`},
		{name: "get without an answer", answer: enginetest.ExecResult{Stderr: "dial unix: no such file", ExitCode: 1}, says: "asking sidecar shop-backup-1: /sidecar exited with code 1: dial unix: no such file"},
		{name: "get of no JSON", answer: enginetest.ExecResult{Stdout: "<html>"}, says: "reading the answer of sidecar shop-backup-1"},
		{name: "stream", stream: true, answer: enginetest.ExecResult{Stdout: `{"level":"info","msg":"stopping"}` + "\nnot an event\n" + `{"result":{"key":"k"}}` + "\n"},
			want: "k", logged: "stopping"},
		{name: "stream failed", stream: true, answer: enginetest.ExecResult{Stdout: `{"msg":"a"}` + "\n" + `{"error":"busy now","code":"busy"}` + "\n"},
			code: control.CodeBusy, says: "busy now", logged: "a"},
		{name: "stream stored, then failed", stream: true, answer: enginetest.ExecResult{Stdout: `{"error":"pruning failed","code":"failed","result":{"key":"k"}}` + "\n"},
			want: "k", code: control.CodeFailed, says: "pruning failed"},
		{name: "stream cut", stream: true, answer: enginetest.ExecResult{Stdout: `{"msg":"a"}` + "\n"}, says: "sidecar shop-backup-1 ended without a result", logged: "a"},
		{name: "stream refused", stream: true, answer: enginetest.ExecResult{Stdout: `{"error":"reading the request: EOF","code":"invalid"}`, ExitCode: 1},
			code: control.CodeInvalid, says: "reading the request: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := enginetest.New(enginetest.Service("shop", "backup", enginetest.Sidecar()))
			var cmd []string
			e.OnExec = func(x enginetest.Exec) enginetest.ExecResult { cmd = x.Cmd; return tc.answer }
			sc, err := Require(context.Background(), e, "shop")
			if err != nil {
				t.Fatal(err)
			}
			var got string
			var logged []string
			if tc.stream {
				var res *control.Result
				res, err = sc.Stream(context.Background(), control.PathRun, control.RunRequest{Service: "db"}, func(ev control.Event) { logged = append(logged, ev.Message) })
				if res != nil {
					got = res.Key
				}
				if want := `/sidecar ctl POST /v1/run {"project":"","service":"db"}`; strings.Join(cmd, " ") != want {
					t.Errorf("ran %q, want %q", strings.Join(cmd, " "), want)
				}
			} else {
				var st control.Status
				if err = sc.Get(context.Background(), control.PathStatus, nil, &st); err == nil {
					got = st.Version
				}
			}
			if got != tc.want {
				t.Errorf("answer %q, want %q", got, tc.want)
			}
			var ce *control.Error
			switch {
			case tc.says == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("error %v, want one saying %q", err, tc.says)
			case tc.code != "" && (!errors.As(err, &ce) || ce.Code != tc.code):
				t.Errorf("error %#v, want code %s", err, tc.code)
			}
			if strings.Join(logged, ",") != tc.logged {
				t.Errorf("logged %q, want %q", logged, tc.logged)
			}
		})
	}
}
