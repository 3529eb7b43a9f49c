package reconcile

import (
	"context"

	"log/slog"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/sidecar/jobs"
	"github.com/docker-backup/docker-backup/internal/swarm"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeNode lists a swarm node's containers; its manager knows tasks.
type fakeNode struct {
	API
	items []container.Summary
}

func (f *fakeNode) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{Items: f.items}, nil
}

type fakeManager struct {
	swarm.API
	tasks []swarmtypes.Task
	svcs  map[string]swarmtypes.Service
}

func (f *fakeManager) TaskList(_ context.Context, o client.TaskListOptions) (client.TaskListResult, error) {
	var out client.TaskListResult
	for _, t := range f.tasks {
		if svc := o.Filters["service"]; len(svc) > 0 && !svc[t.ServiceID] {
			continue
		}
		out.Items = append(out.Items, t)
	}
	return out, nil
}

func (f *fakeManager) ServiceInspect(_ context.Context, id string, _ client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	svc, ok := f.svcs[id]
	if !ok {
		return client.ServiceInspectResult{}, cerrdefs.ErrNotFound.WithMessage("service " + id + " not found")
	}
	return client.ServiceInspectResult{Service: svc}, nil
}

type wantSyncer struct{ want map[string]*jobs.Job }

func (s *wantSyncer) Sync(_ context.Context, want map[string]*jobs.Job) []string {
	s.want = want
	return nil
}

func taskContainer(id, svcID, svcName, taskID string, slot string, state container.ContainerState, created int64, extra map[string]string) container.Summary {
	l := map[string]string{containers.LabelStack: "shop", containers.LabelSwarmService: svcName, containers.LabelSwarmServiceID: svcID,
		containers.LabelSwarmTaskID: taskID, containers.LabelSwarmTaskName: svcName + "." + slot + "." + taskID, containers.LabelSwarmNodeID: "n1"}
	for k, v := range extra {
		l[k] = v
	}
	return container.Summary{ID: id, Names: []string{"/" + svcName + "." + slot + "." + taskID}, Labels: l, State: state, Created: created,
		Mounts: []container.MountPoint{{Type: mount.TypeVolume, Name: "v", Destination: "/data"}}}
}

// TestForgedTaskContainerGetsNoJob: a plain `docker run` container with a stack's and a task's
// labels — the service ID of another service (the victim), docker-backup.stop — must not
// become a job (the sidecar would scale the victim to 0 on its schedule), and must not take the
// real task's place. The real task's container keeps its job while its service is scaled to 0
// for a stop: true backup (the swarm then forgets the task).
func TestForgedTaskContainerGetsNoJob(t *testing.T) {
	ctx := context.Background()
	one := uint64(1)
	svc := func(id, name string, lbls map[string]string) swarmtypes.Service {
		s := swarmtypes.Service{ID: id}
		s.Spec.Name, s.Spec.Labels = name, lbls
		s.Spec.Mode.Replicated = &swarmtypes.ReplicatedService{Replicas: &one}
		return s
	}
	mgr := &fakeManager{svcs: map[string]swarmtypes.Service{
		"svc-files":  svc("svc-files", "shop_files", map[string]string{"docker-backup.enable": "true", "docker-backup.schedule": "@daily", "docker-backup.strategy": "volume"}),
		"svc-victim": svc("svc-victim", "shop_victim", nil),
	}}
	running := func(id, svcID, cid string) swarmtypes.Task {
		return swarmtypes.Task{ID: id, ServiceID: svcID, NodeID: "n1", Slot: 1, DesiredState: swarmtypes.TaskStateRunning,
			Status: swarmtypes.TaskStatus{State: swarmtypes.TaskStateRunning, ContainerStatus: &swarmtypes.ContainerStatus{ContainerID: cid}}}
	}
	mgr.tasks = []swarmtypes.Task{running("tf", "svc-files", "c-files"), running("tv", "svc-victim", "c-victim")}
	evil := map[string]string{"docker-backup.enable": "true", "docker-backup.schedule": "@every 20s", "docker-backup.strategy": "volume", "docker-backup.stop": "true"}
	node := &fakeNode{items: []container.Summary{
		taskContainer("c-files", "svc-files", "shop_files", "tf", "1", container.StateRunning, 10, nil),
		taskContainer("c-victim", "svc-victim", "shop_victim", "tv", "1", container.StateRunning, 10, nil),
		taskContainer("c-evil", "svc-victim", "shop_evil", "tv", "1", container.StateRunning, 20, evil),  // the victim's task ID
		taskContainer("c-evil2", "svc-files", "shop_files", "tf", "1", container.StateRunning, 30, evil), // the real task's labels, newer
	}}
	sync := &wantSyncer{}
	r := New(Options{API: node, Project: "shop", Node: swarm.Node{ID: "n1", Name: "a", Active: true, Manager: true}, SwarmAPI: mgr,
		Targets: []string{"default"}, Syncer: sync, Log: slog.New(slog.DiscardHandler)})
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sync.want) != 1 {
		t.Fatalf("jobs %v, want shop/files's only", keys(sync.want))
	}
	for _, j := range sync.want {
		if j.Project != "shop" || j.Service != "files" || j.Stop || !strings.HasPrefix(j.Container, "shop_files.1.tf") || j.Container == "" {
			t.Fatalf("job %+v: not the real task's", j.Job)
		}
	}
	if p := strings.Join(r.State().Problems, "\n"); !strings.Contains(p, "c-evil") || !strings.Contains(p, "c-evil2") {
		t.Errorf("the forged containers are not reported: %s", p)
	}

	// Scaled to 0 by a stop: true backup: the swarm forgets the task, its container stays.
	mgr.tasks = mgr.tasks[1:]
	node.items[0].State = container.StateExited
	node.items = node.items[:2]
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sync.want) != 1 {
		t.Fatalf("while scaled to 0: jobs %v, want shop/files's kept", keys(sync.want))
	}
	// Newer Engines (26.1) remove the container too: the job stays (its run must not be
	// cancelled) while the service has no running task.
	node.items = node.items[1:]
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sync.want) != 1 {
		t.Fatalf("scaled to 0, container removed: jobs %v, want shop/files's kept", keys(sync.want))
	}
	// The service removed: the job goes.
	delete(mgr.svcs, "svc-files")
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sync.want) != 0 {
		t.Fatalf("service removed: jobs %v, want none", keys(sync.want))
	}
}

func keys(m map[string]*jobs.Job) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
