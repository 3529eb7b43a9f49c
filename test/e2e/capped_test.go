package e2e

import (
	"testing"
	"time"
)

// capRun times a 50 MB backup of service's /data to capped at --limit-upload 10MiB/s, and the
// same backup to uncapped without the cap, and checks the cap: never faster than it allows (4.25 s: 5 s less 15 %), and no slower than its own 5 s
// plus 15 % on top of what the machine takes for the upload without it — a loaded machine
// is slower, a cap applied twice (to a part's reads and its sends) takes twice as long. The
// goal itself, 5 s ± 15 % on an idle machine, is `make bench`'s.
func capRun(t *testing.T, name string, env []string, project, service, capped, uncapped string) {
	t.Helper()
	run := func(url string, args ...string) time.Duration {
		start := time.Now()
		cmd := append([]string{"backup", "run", service, "--project", project, "--strategy", "volume", "--paths", "/data", "--to", url}, args...)
		out, stderr, err := dockerCmd(env, cmd...)
		if err != nil {
			t.Fatalf("docker backup run %v: %v\n%s\n%s", args, err, out, stderr)
		}
		return time.Since(start)
	}
	free := run(uncapped)
	took := run(capped, "--limit-upload", "10MiB/s")
	t.Logf("50 MB at 10MiB/s to %s: %v (goal 5 s ± 15 %%); without the cap: %v", name, took.Round(10*time.Millisecond), free.Round(10*time.Millisecond))
	if most := 5750*time.Millisecond + free; took < 4250*time.Millisecond || took > most {
		t.Errorf("50 MB at 10MiB/s to %s took %v, want 4.25 s to %v (5.75 s + the %v it takes without the cap)", name, took, most.Round(10*time.Millisecond), free.Round(10*time.Millisecond))
	}
}
