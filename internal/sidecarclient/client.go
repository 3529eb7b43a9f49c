// Package sidecarclient is the plugin's way to a running sidecar: it finds the sidecar's
// container and runs `/sidecar ctl` in it (docker exec), which forwards the request to the
// sidecar's control socket (package control is the protocol).
package sidecarclient

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/moby/moby/client"
)

// Client talks to a running sidecar through the Engine API: it runs `/sidecar ctl` in the
// sidecar's container (docker exec), so the sidecar never opens a port for it.
type Client struct {
	Container *containers.Container
}

// Find returns the running sidecar of project, or of the only project that has one when
// project is empty; nil when there is none.
func Find(ctx context.Context, api containers.API, project string) (*Client, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", labels.Sidecar+"=true")})
	if err != nil {
		return nil, fmt.Errorf("looking for a docker-backup sidecar: %w", err)
	}
	byProject := map[string]string{}
	for _, s := range res.Items {
		// A compose project's sidecar, or a stack's (on this node: each node runs its own).
		p := containers.MembershipOf(s.Labels, "").Project
		if project != "" && p != project {
			continue
		}
		if _, ok := byProject[p]; !ok || s.ID < byProject[p] {
			byProject[p] = s.ID
		}
	}
	if len(byProject) > 1 {
		names := make([]string, 0, len(byProject))
		for p := range byProject {
			names = append(names, p)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("sidecars run in several compose projects (%s): choose one with --project", strings.Join(names, ", "))
	}
	for _, id := range byProject {
		c, err := containers.Inspect(ctx, api, id)
		if err != nil {
			return nil, err
		}
		return &Client{Container: c}, nil
	}
	return nil, nil
}

// OfService returns the sidecar of the project the service is in (project, or the service's
// own when project is empty); nil when that project has none, or the service is not found
// (the direct path reports what is wrong).
func OfService(ctx context.Context, api containers.API, project, service string) (*Client, error) {
	if project == "" {
		c, err := containers.Find(ctx, api, "", service)
		if err != nil || c.Project == "" {
			return nil, nil
		}
		project = c.Project
	}
	return Find(ctx, api, project)
}

// Require is Find that fails when there is no sidecar.
func Require(ctx context.Context, api containers.API, project string) (*Client, error) {
	sc, err := Find(ctx, api, project)
	if err == nil && sc == nil {
		where := "on this Docker host"
		if project != "" {
			where = "in compose project " + project
		}
		err = fmt.Errorf("no running docker-backup sidecar %s (add the sidecar service to the project, see README)", where)
	}
	return sc, err
}

// Project is the compose project the sidecar runs in.
func (s *Client) Project() string { return s.Container.Project }

// Name is the sidecar's container name.
func (s *Client) Name() string { return s.Container.Name }

// Get runs a GET request and decodes its JSON answer into v.
func (s *Client) Get(ctx context.Context, path string, q url.Values, v any) error {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := s.Container.Exec(ctx, containers.ExecSpec{Cmd: []string{"/sidecar", "ctl", "GET", path}, Stdout: pw})
		pw.CloseWithError(err)
		errc <- err
	}()
	b, readErr := io.ReadAll(pr)
	execErr := <-errc
	if execErr != nil {
		var ev control.Event
		if json.Unmarshal(b, &ev) == nil && ev.Error != "" {
			return &control.Error{Code: ev.Code, Message: fmt.Sprintf("sidecar %s: %s", s.Name(), ev.Error)}
		}
		return fmt.Errorf("asking sidecar %s: %w", s.Name(), execErr)
	}
	if readErr != nil {
		return readErr
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading the answer of sidecar %s: %w", s.Name(), err)
	}
	return nil
}

// Stream runs a streamed POST request, passing each log event to onLog, and returns the
// final result. A result with an error means the operation's main part succeeded and a
// later part (retention) failed. A failure is an *Error with its code.
func (s *Client) Stream(ctx context.Context, path string, body any, onLog func(control.Event)) (*control.Result, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := s.Container.Exec(ctx, containers.ExecSpec{Cmd: []string{"/sidecar", "ctl", "POST", path, string(b)}, Stdout: pw})
		pw.CloseWithError(err)
		errc <- err
	}()
	var last *control.Event
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev control.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue
		}
		if ev.Result != nil || ev.Error != "" {
			last = &ev
			continue
		}
		onLog(ev)
	}
	_, _ = io.Copy(io.Discard, pr)
	execErr := <-errc
	switch {
	case last != nil && last.Error != "":
		return last.Result, &control.Error{Code: last.Code, Message: last.Error}
	case last != nil:
		return last.Result, nil
	case execErr != nil:
		return nil, fmt.Errorf("asking sidecar %s: %w", s.Name(), execErr)
	}
	return nil, fmt.Errorf("sidecar %s ended without a result", s.Name())
}
