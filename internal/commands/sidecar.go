package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// sidecarClient talks to a project's running sidecar through the Engine API: it runs
// `/sidecar ctl` in the sidecar's container (docker exec), so no port is ever opened.
type sidecarClient struct {
	c *containers.Container
}

// noSidecarFlag adds --no-sidecar.
func noSidecarFlag(flags *pflag.FlagSet, p *bool) {
	flags.BoolVar(p, "no-sidecar", false, "Work directly on the target even when the project has a sidecar")
}

// findSidecar returns the running sidecar of project, or of the only project that has one
// when project is empty; nil when there is none.
func findSidecar(ctx context.Context, api containers.API, project string) (*sidecarClient, error) {
	filters := make(client.Filters).Add("label", detect.LabelSidecar+"=true")
	if project != "" {
		filters = filters.Add("label", containers.LabelProject+"="+project)
	}
	res, err := api.ContainerList(ctx, client.ContainerListOptions{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("looking for a docker-backup sidecar: %w", err)
	}
	byProject := map[string]string{}
	for _, s := range res.Items {
		p := s.Labels[containers.LabelProject]
		if _, ok := byProject[p]; !ok || s.ID < byProject[p] {
			byProject[p] = s.ID
		}
	}
	switch len(byProject) {
	case 0:
		return nil, nil
	case 1:
	default:
		var names []string
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
		return &sidecarClient{c: c}, nil
	}
	return nil, nil
}

// sidecarOfService returns the sidecar of the project the service is in (project, or the
// service's own when project is empty); nil when that project has none.
func sidecarOfService(ctx context.Context, api containers.API, project, service string) (*sidecarClient, error) {
	if project == "" {
		c, err := containers.Find(ctx, api, "", service)
		if err != nil || c.Project == "" {
			return nil, nil // the direct path reports what is wrong
		}
		project = c.Project
	}
	return findSidecar(ctx, api, project)
}

// requireSidecar is findSidecar that fails when there is none.
func requireSidecar(ctx context.Context, api containers.API, project string) (*sidecarClient, error) {
	sc, err := findSidecar(ctx, api, project)
	if err == nil && sc == nil {
		where := "on this Docker host"
		if project != "" {
			where = "in compose project " + project
		}
		err = fmt.Errorf("no running docker-backup sidecar %s (add the sidecar service to the project, see README)", where)
	}
	return sc, err
}

func (s *sidecarClient) project() string { return s.c.Project }

// get runs a GET request and decodes its JSON answer into v.
func (s *sidecarClient) get(ctx context.Context, path string, q url.Values, v any) error {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := s.c.Exec(ctx, containers.ExecSpec{Cmd: []string{"/sidecar", "ctl", "GET", path}, Stdout: pw})
		pw.CloseWithError(err)
		errc <- err
	}()
	b, readErr := io.ReadAll(pr)
	execErr := <-errc
	if execErr != nil {
		var ev control.Event
		if json.Unmarshal(b, &ev) == nil && ev.Error != "" {
			return fmt.Errorf("sidecar %s: %s", s.c.Name, ev.Error)
		}
		return fmt.Errorf("asking sidecar %s: %w", s.c.Name, execErr)
	}
	if readErr != nil {
		return readErr
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading the answer of sidecar %s: %w", s.c.Name, err)
	}
	return nil
}

// stream runs a streamed POST request, passing each log event to onLog, and returns the
// final result. A result with an error means the operation's main part succeeded and a
// later part (retention) failed.
func (s *sidecarClient) stream(ctx context.Context, path string, body any, onLog func(control.Event)) (*control.Result, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := s.c.Exec(ctx, containers.ExecSpec{Cmd: []string{"/sidecar", "ctl", "POST", path, string(b)}, Stdout: pw})
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
		return last.Result, errors.New(last.Error)
	case last != nil:
		return last.Result, nil
	case execErr != nil:
		return nil, fmt.Errorf("asking sidecar %s: %w", s.c.Name, execErr)
	}
	return nil, fmt.Errorf("sidecar %s ended without a result", s.c.Name)
}
