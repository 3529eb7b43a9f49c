package selection

import (
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func backup(key, project, service, job string, age time.Duration, untrusted string) artifact.Summary {
	return artifact.Summary{Key: key, Project: project, Service: service, Job: job, CreatedAt: now.Add(-age), Untrusted: untrusted}
}

func TestMatch(t *testing.T) {
	ok := backup("shop/db/a", "shop", "db", "nightly", time.Hour, "")
	cases := []struct {
		name   string
		filter Filter
		s      artifact.Summary
		want   Verdict
	}{
		{"any", Filter{}, ok, Usable},
		{"same service", Filter{Project: "shop", Service: "db"}, ok, Usable},
		{"other project", Filter{Project: "blog", Service: "db"}, ok, Other},
		{"other service", Filter{Project: "shop", Service: "web"}, ok, Other},
		{"same job", Filter{Job: "nightly"}, ok, Usable},
		{"other job", Filter{Job: "hourly"}, ok, Other},
		{"in its dir", Filter{Dir: "shop/db"}, ok, Usable},
		{"below another prefix", Filter{Dir: "shop/db"}, backup("host2/shop/db/a", "shop", "db", "nightly", time.Hour, ""), Other},
		{"standalone by container", Filter{Service: "mydb"}, artifact.Summary{Key: "standalone/mydb/a", Container: "mydb", CreatedAt: now}, Usable},
		{"exactly this project", Filter{Project: "shop", ExactProject: true}, ok, Usable},
		{"exactly no project", Filter{ExactProject: true, Service: "db"}, ok, Other},
		{"exactly no project, standalone", Filter{ExactProject: true, Service: "mydb"}, artifact.Summary{Key: "standalone/mydb/a", Container: "mydb", CreatedAt: now}, Usable},
		{"unsigned", Filter{}, backup("shop/db/b", "shop", "db", "", time.Hour, "the manifest is not signed"), Untrusted},
		{"unsigned allowed", Filter{AllowUnsigned: true}, backup("shop/db/b", "shop", "db", "", time.Hour, "the manifest is not signed"), Usable},
		{"other key", Filter{}, backup("shop/db/b", "shop", "db", "", time.Hour, "signed with another key"), Untrusted},
		{"within the skew", Filter{}, backup("shop/db/c", "shop", "db", "", -artifact.FutureSkew+time.Second, ""), Usable},
		{"in the future", Filter{}, backup("shop/db/c", "shop", "db", "", -time.Hour, ""), Future},
		{"in the future, unsigned allowed", Filter{AllowUnsigned: true}, backup("shop/db/c", "shop", "db", "", -time.Hour, "unsigned"), Future},
		{"not ours and unsigned", Filter{Service: "web"}, backup("shop/db/b", "shop", "db", "", time.Hour, "unsigned"), Other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.filter.Now = now
			got, why := c.filter.Match(c.s)
			if got != c.want {
				t.Errorf("Match = %v (%s), want %v", got, why, c.want)
			}
			if (got == Untrusted || got == Future) == (why == "") {
				t.Errorf("verdict %v with reason %q", got, why)
			}
		})
	}
}

func TestLatest(t *testing.T) {
	list := []artifact.Summary{
		backup("shop/db/1", "shop", "db", "nightly", 3*time.Hour, ""),
		backup("shop/db/2", "shop", "db", "nightly", 2*time.Hour, ""),
		backup("shop/db/3", "shop", "db", "", time.Hour, "the manifest is not signed"),
		backup("shop/db/4", "shop", "db", "nightly", -48*time.Hour, ""), // dated in the future
		backup("shop/web/5", "shop", "web", "nightly", 0, ""),
		backup("shop/db/0", "shop", "db", "nightly", 4*time.Hour, ""),
	}
	cases := []struct {
		name    string
		filter  Filter
		want    string
		skipped []string
	}{
		{"trusted only", Filter{Service: "db"}, "shop/db/2", []string{"shop/db/3", "shop/db/4"}},
		{"unsigned allowed", Filter{Service: "db", AllowUnsigned: true}, "shop/db/3", []string{"shop/db/4"}},
		{"a job's", Filter{Service: "db", Job: "nightly"}, "shop/db/2", []string{"shop/db/4"}},
		{"another service", Filter{Service: "web"}, "shop/web/5", nil},
		{"none", Filter{Service: "cache"}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.filter.Now = now
			got, skipped, ok := c.filter.Latest(list)
			if ok != (c.want != "") || got.Key != c.want {
				t.Errorf("Latest = %q (%v), want %q", got.Key, ok, c.want)
			}
			var keys []string
			for _, s := range skipped {
				keys = append(keys, s.Backup.Key)
			}
			if len(keys) != len(c.skipped) {
				t.Fatalf("skipped %v, want %v", keys, c.skipped)
			}
			for i := range keys {
				if keys[i] != c.skipped[i] {
					t.Errorf("skipped %v, want %v", keys, c.skipped)
				}
			}
		})
	}
}

// TestUntrustedBackupsNeverCountForRetention: what retention counts is Select's Usable: three
// unsigned backups dated just before now (someone who can only add objects) are not among
// them, so keep-last cannot be made to delete every signed backup.
func TestUntrustedBackupsNeverCountForRetention(t *testing.T) {
	var list []artifact.Summary
	for i, age := range []time.Duration{4 * time.Hour, 3 * time.Hour, 2 * time.Hour, time.Hour} {
		list = append(list, backup("shop/db/signed"+string(rune('a'+i)), "shop", "db", "nightly", age, ""))
	}
	for i := range 3 {
		list = append(list, backup("shop/db/forged"+string(rune('a'+i)), "shop", "db", "nightly", time.Minute, "the manifest is not signed"))
	}
	sel := Filter{Project: "shop", Service: "db", Job: "nightly", Dir: "shop/db", Now: now}.Select(list)
	if len(sel.Usable) != 4 || len(sel.Skipped) != 3 {
		t.Fatalf("usable %d, skipped %d", len(sel.Usable), len(sel.Skipped))
	}
	for _, s := range sel.Usable {
		if !s.Trusted() {
			t.Errorf("%s counted", s.Key)
		}
	}
}
