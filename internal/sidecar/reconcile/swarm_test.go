package reconcile

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/sidecar/jobs"
	"github.com/docker-backup/docker-backup/internal/swarm"
)

type capture struct{ want map[string]*jobs.Job }

func (c *capture) Sync(_ context.Context, want map[string]*jobs.Job) []string {
	c.want = want
	return nil
}

// task is the container of a stack's task as Swarm labels it; slot 0 makes a global
// service's task (named after the node's ID).
func task(stack, service string, slot int, lbls map[string]string) *enginetest.ContainerSpec {
	mid := "nodeid1"
	if slot > 0 {
		mid = strconv.Itoa(slot)
	}
	name := stack + "_" + service + "." + mid + ".task" + service
	all := map[string]string{containers.LabelStack: stack, containers.LabelSwarmService: stack + "_" + service,
		containers.LabelSwarmServiceID: "svc-" + service, containers.LabelSwarmTaskID: "task" + service,
		containers.LabelSwarmTaskName: name, containers.LabelSwarmNodeID: "nodeid1"}
	maps.Copy(all, lbls)
	return enginetest.Container(name, enginetest.WithLabels(all), enginetest.WithVolume(service+"-data", "/data"))
}

func backupLabels(extra ...string) map[string]string {
	m := map[string]string{"docker-backup.enable": "true", "docker-backup.strategy": "volume", "docker-backup.schedule": "@daily"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// A worker node without a manager to ask: its global services' tasks are backed up by their
// containers' labels; a replicated service is a problem (which node runs its lowest slot is
// unknown), never backed up twice; stop: true on a global service is refused with the reason.
func TestSwarmWorkerWithoutManager(t *testing.T) {
	eng := enginetest.New(
		task("st", "agent", 0, backupLabels()),
		task("st", "web", 2, backupLabels()),
		task("st", "cache", 0, backupLabels("docker-backup.stop", "true")),
		task("st", "plain", 1, nil), // no backup labels: nothing to say
	)
	sync := &capture{}
	r := New(Options{API: eng, Project: "st", Node: swarm.Node{ID: "nodeid1", Name: "w1", Active: true},
		Syncer: sync, Log: slog.New(slog.DiscardHandler)})
	if err := r.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(sync.want)); !slices.Equal(keys, []string{"st/agent@w1/default"}) {
		t.Fatalf("jobs %v, want only the global service's task on this node", keys)
	}
	if j := sync.want["st/agent@w1/default"]; j.Node != "w1" || j.Service != "agent@w1" {
		t.Fatalf("job node %q service %q", j.Node, j.Service)
	}
	problems := strings.Join(r.State().Problems, "\n")
	for _, want := range []string{"st/web: node w1 is a swarm worker and has no manager's API", "docker-backup.stop", "global swarm service"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not say %q:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, "plain") {
		t.Errorf("a service without backup labels is a problem:\n%s", problems)
	}
}
