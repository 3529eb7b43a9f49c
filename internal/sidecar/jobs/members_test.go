package jobs

import (
	"testing"

	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/retention"
)

// A job with several targets is a member job per target, keyed JOB@TARGET beyond the first,
// each with its target's retention; a job with one target is itself.
func TestMembers(t *testing.T) {
	j := &Job{Job: labels.Job{Name: "nightly", Target: "default", Targets: []string{"default", "offsite", "nas"}, Retention: retention.Policy{Last: 7},
		TargetRetention: map[string]retention.Policy{"offsite": {Monthly: 12}, "default": {Daily: 3}}}, Project: "shop", Service: "db"}
	ms := Members(j)
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.Key())
	}
	if len(ms) != 3 || keys[0] != "shop/db/nightly" || keys[1] != "shop/db/nightly@offsite" || keys[2] != "shop/db/nightly@nas" {
		t.Fatalf("members %q", keys)
	}
	if ms[0].Retention != (retention.Policy{Daily: 3}) || ms[1].Retention != (retention.Policy{Monthly: 12}) || ms[2].Retention != (retention.Policy{Last: 7}) {
		t.Errorf("retentions %v %v %v", ms[0].Retention, ms[1].Retention, ms[2].Retention)
	}
	if ms[1].runKey() != "shop/db/nightly" || ms[1].TargetName() != "offsite" {
		t.Errorf("member %+v", ms[1])
	}
	if one := Members(&Job{Job: labels.Job{Name: "x", Target: "default"}, Project: "p", Service: "s"}); len(one) != 1 || one[0].Key() != "p/s/x" {
		t.Errorf("one target: %+v", one)
	}
}
