package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSidecarHooksAndDependents: pre and post commands run in the container with their
// output in the run's log; stopping a service stops the services that depend on it first
// and starts them after it; a failing pre command fails the run, still runs the post
// command and leaves every container running.
func TestSidecarHooksAndDependents(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	data := p.volume("data")
	app := func(pre string) string {
		return p.service("app", plainImage, append([]string{"-v", data + ":/data",
			"--label", "docker-backup.enable=true", "--label", "docker-backup.strategy=volume",
			"--label", "docker-backup.schedule=0 3 * * *", "--label", "docker-backup.stop=true",
			"--label", "docker-backup.pre=" + pre,
			"--label", `docker-backup.post=["sh", "-c", "echo post-says-bye; date +%s%N >> /data/post-ran"]`}, idle...)...)
	}
	appC := app(`sh -c 'echo pre-says-hi; echo "$HOSTNAME" > /data/pre-ran'`)
	// web depends on app, worker on web: compose v2 records this in a label.
	web := p.service("web", plainImage, append([]string{"--label", "com.docker.compose.depends_on=app:service_started:false"}, idle...)...)
	worker := p.service("worker", plainImage, append([]string{"--label", "com.docker.compose.depends_on=web:service_started:false,db:service_healthy:false"}, idle...)...)
	other := p.service("other", plainImage, idle...)
	startSidecar(t, p)

	since := time.Now().Add(-time.Second).Unix()
	out, stderr, err := dockerCmd(nil, "backup", "run", "app", "--project", p.name)
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, stderr)
	}
	mustContain(t, stderr, "pre-says-hi", "post-says-bye", "Stopping the containers that depend on the service first")
	until := time.Now().Add(time.Second).Unix()
	events := strings.Fields(docker(t, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(until),
		"--filter", "label=com.docker.compose.project="+p.name, "--filter", "event=stop", "--filter", "event=start",
		"--format", "{{.Action}}:{{.Actor.Attributes.name}}"))
	want := []string{"stop:" + worker, "stop:" + web, "stop:" + appC, "start:" + appC, "start:" + web, "start:" + worker}
	for len(events) > 0 && !strings.HasPrefix(events[0], "stop:") {
		events = events[1:] // the containers' first start, in the same second
	}
	if strings.Join(events, " ") != strings.Join(want, " ") {
		t.Errorf("stop/start order:\n got %q\nwant %q", events, want)
	}
	for _, c := range []string{appC, web, worker, other} {
		if !running(t, c) {
			t.Errorf("%s is not running after the backup", c)
		}
	}
	if strings.TrimSpace(docker(t, "exec", appC, "cat", "/data/pre-ran")) == "" {
		t.Error("the pre command did not run in the container")
	}
	if n := len(sidecarBackups(t, p.name, "app")); n != 1 {
		t.Fatalf("%d backups, want 1", n)
	}

	// A failing pre command: the run fails, nothing is stored, the post command still runs.
	docker(t, "rm", "-f", appC)
	appC = app(`sh -c 'echo about to fail >&2; exit 3'`)
	postBefore := len(strings.Fields(docker(t, "exec", appC, "cat", "/data/post-ran")))
	eventually(t, 20*time.Second, "the recreated app's labels are picked up", func() error {
		for _, pr := range sidecarStatus(t, p.name).Jobs {
			if pr.Service == "app" && strings.Contains(strings.Join(pr.Pre, " "), "exit 3") {
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	stderr = backupFails(t, nil, "run", "app", "--project", p.name)
	mustContain(t, stderr, "pre command failed", "exit", "3", "about to fail")
	if postAfter := len(strings.Fields(docker(t, "exec", appC, "cat", "/data/post-ran"))); postAfter != postBefore+1 {
		t.Errorf("the post command ran %d times after the failing pre command, want once", postAfter-postBefore)
	}
	for _, c := range []string{appC, web, worker} {
		if !running(t, c) {
			t.Errorf("%s is not running after the failed run", c)
		}
	}
	js := jobStatus(sidecarStatus(t, p.name), "app", "default")
	if js.Last == nil || js.Last.Status != "failed" || !strings.Contains(js.Last.Error, "pre command failed") {
		t.Errorf("last run: %+v", js.Last)
	}
	if n := len(sidecarBackups(t, p.name, "app")); n != 1 {
		t.Errorf("%d backups after the failed run, want still 1", n)
	}
}

// TestSidecarHookTimeout: a pre command that hangs is ended by the hook timeout, not the run's
// six hours: the run fails at once, the post command runs, nothing is stored, the app runs.
func TestSidecarHookTimeout(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.stop=true",
		"docker-backup.pre=sleep 600", "docker-backup.hook-timeout=2s", `docker-backup.post=sh -c "echo cleaned > /data/post-ran"`)
	startSidecar(t, p)
	stderr := backupFails(t, nil, "run", "app", "--project", p.name)
	mustContain(t, stderr, "pre command failed", "did not finish within 2s (the hook timeout)", "it was ended in the container (SIGTERM)")
	if got := strings.TrimSpace(docker(t, "exec", app, "cat", "/data/post-ran")); got != "cleaned" {
		t.Errorf("the post command did not run: %q", got)
	}
	if !running(t, app) || len(sidecarBackups(t, p.name, "app")) != 0 {
		t.Error("the app is stopped or a backup was stored")
	}
	// The hook is gone from the container, not left sleeping after its timeout.
	if ps := processes(t, app); strings.Contains(ps, "sleep 600") {
		t.Errorf("the timed-out hook still runs in the container:\n%s", ps)
	}
}

// processes lists the command lines of the processes running in a container.
func processes(t *testing.T, container string) string {
	t.Helper()
	return docker(t, "exec", container, "sh", "-c", `for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done`)
}

// TestSidecarHookTimeoutWithoutShell: in an image without sh, a hook past its timeout cannot be
// ended from a second command (the Engine API cannot end an exec): the run fails at once all the
// same and says that the hook may still be running, and why.
func TestSidecarHookTimeoutWithoutShell(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("files")+":/data", "--label", "docker-backup.enable=true",
		"--label", "docker-backup.strategy=volume", "--label", "docker-backup.schedule=0 3 * * *",
		"--label", "docker-backup.pre=/pause", "--label", "docker-backup.hook-timeout=2s")
	startSidecar(t, p)
	start := time.Now()
	stderr := backupFails(t, nil, "run", "files", "--project", p.name)
	mustContain(t, stderr, "did not finish within 2s (the hook timeout)", "may still be running in the container", "needs sh, tr and kill in the image")
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the run took %s to fail", d)
	}
}
