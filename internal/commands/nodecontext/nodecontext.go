// Package nodecontext finds a stack's service for the plugin when its task runs on another
// Swarm node than the Engine's: it says which node, and which of the user's Docker contexts
// reaches it.
package nodecontext

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/swarm"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/context/docker"
	"github.com/moby/moby/client"
)

// Resolve is containers.ResolveHere that, for a stack's service running on another Swarm
// node, names the Docker contexts of that node.
func Resolve(ctx context.Context, dockerCli command.Cli, api client.APIClient, project, name string) (*containers.Container, error) {
	c, err := containers.ResolveHere(ctx, api, project, name)
	if err == nil || !errors.Is(err, containers.ErrNotFound) {
		return c, err
	}
	if where := swarm.Elsewhere(ctx, api, project, name); where != nil {
		err = where
	}
	var ee *swarm.ElsewhereError
	if errors.As(err, &ee) {
		if names := nodeContexts(ctx, dockerCli, ee.Nodes); len(names) > 0 {
			ee.How = fmt.Sprintf("use that node's Docker context: docker --context %s backup …", names[0])
			if len(names) > 1 {
				ee.How += " (contexts of those nodes: " + strings.Join(names, ", ") + ")"
			}
		}
	}
	return c, err
}

// nodeContexts lists the Docker contexts whose Engine is one of the nodes (by host name),
// asking each context's Engine for a few seconds at most.
func nodeContexts(ctx context.Context, dockerCli command.Cli, nodes []string) []string {
	st := dockerCli.ContextStore()
	list, err := st.List()
	if err != nil {
		return nil
	}
	var out []string
	for _, meta := range list {
		if meta.Name == dockerCli.CurrentContext() {
			continue
		}
		epMeta, err := docker.EndpointFromContext(meta)
		if err != nil {
			continue
		}
		ep, err := docker.WithTLSData(st, meta.Name, epMeta)
		if err != nil {
			continue
		}
		opts, err := ep.ClientOpts()
		if err != nil {
			continue
		}
		if name := engineName(ctx, opts); name != "" && slices.Contains(nodes, name) {
			out = append(out, meta.Name)
		}
	}
	return out
}

// engineName is the host name of the Engine the options reach; "" when it does not answer
// within 3 seconds.
func engineName(ctx context.Context, opts []client.Opt) string {
	api, err := client.New(opts...)
	if err != nil {
		return ""
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return ""
	}
	res, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return ""
	}
	return res.Info.Name
}
