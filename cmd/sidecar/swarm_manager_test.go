package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/sidecar/config"
	"github.com/docker-backup/docker-backup/internal/swarm"
	"github.com/moby/moby/client"
)

// fakeEngine answers /_ping and /info as a swarm node (manager or worker).
func fakeEngine(t *testing.T, manager bool) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.45")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			ctl := "false"
			if manager {
				ctl = "true"
			}
			w.Write([]byte(`{"Name":"n1","Swarm":{"NodeID":"id1","LocalNodeState":"active","ControlAvailable":` + ctl + `}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	api, err := client.New(client.WithHost("tcp://" + strings.TrimPrefix(srv.URL, "http://")))
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// TestSwarmManagerSetting: the stack file gives every node of a global service the same
// DOCKER_BACKUP_SWARM_MANAGER. A manager ignores it (docs/swarm.md) instead of failing to
// start when the worker's socket path does not exist there; a worker whose manager does not
// answer starts (its global services are still backed up) instead of restarting forever; a
// plain tcp:// manager API without TLS certificates is refused.
func TestSwarmManagerSetting(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	missing := "unix://" + filepath.Join(t.TempDir(), "no-manager.sock")

	got, err := withSwarmManager(ctx, fakeEngine(t, true), config.Config{SwarmManager: missing}, log)
	if err != nil {
		t.Fatalf("a manager node with the workers' setting: %v", err)
	}
	if _, routed := got.(swarm.Routed); routed {
		t.Fatal("a manager routes its swarm calls elsewhere")
	}
	got, err = withSwarmManager(ctx, fakeEngine(t, false), config.Config{SwarmManager: missing}, log)
	if err != nil {
		t.Fatalf("a worker whose manager does not answer: %v", err)
	}
	if _, routed := got.(swarm.Routed); !routed {
		t.Fatal("a worker does not route its swarm calls to the manager")
	}
	_, err = withSwarmManager(ctx, fakeEngine(t, false), config.Config{SwarmManager: "tcp://10.0.0.1:2375"}, log)
	if err == nil || !strings.Contains(err.Error(), config.EnvSwarmManagerCerts) {
		t.Fatalf("plain tcp:// without certificates: %v", err)
	}
}
