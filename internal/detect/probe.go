package detect

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
)

// probes pair a family's server binaries with its dump tools: both must be in the container,
// so that an application image that merely ships a client is not taken for a database.
var probes = []struct {
	strategy      string
	servers, dump []string
}{
	{"postgres", []string{"postgres"}, []string{"pg_dump"}},
	{"mysql", []string{"mariadbd", "mysqld"}, []string{"mariadb-dump", "mysqldump"}},
	{"mongo", []string{"mongod"}, []string{"mongodump"}},
	{"redis", []string{"redis-server", "valkey-server", "keydb-server"}, []string{"redis-cli", "valkey-cli", "keydb-cli"}},
}

// Probe looks inside a running container for database servers and their dump tools, and for
// SQLite database files in its mounts. It is used when labels and image say nothing.
func Probe(ctx context.Context, c *containers.Container) []Candidate {
	if !c.Running || labels.Excluded(c.Labels) != "" {
		return nil
	}
	has := lookInside(ctx, c)
	var out []Candidate
	for _, p := range probes {
		if server := has(p.servers); server != "" {
			if tool := has(p.dump); tool != "" {
				out = append(out, Candidate{p.strategy, fmt.Sprintf("probe: %s and %s are in the container", server, tool)})
			}
		}
	}
	// SQLiteFiles runs find and head in the container: not where they are not.
	if has([]string{"find"}) == "" || has([]string{"head"}) == "" {
		return out
	}
	if files := SQLiteFiles(ctx, c); len(files) > 0 {
		out = append(out, Candidate{"sqlite", fmt.Sprintf("SQLite files in its mounts: %s (choose one with --database; none is picked for you)", strings.Join(files, ", "))})
	}
	return out
}

// lookInside returns how Probe asks whether one of some programs is in c: one exec of a shell
// asks for all of them at once (each exec costs the engine about 0.05–0.1 s; looking for the
// shell, a millisecond). Without a shell, each program is looked for in the directories of the
// container's PATH with the Engine's stat of a path: no exec, and no program of the
// container's is run.
func lookInside(ctx context.Context, c *containers.Container) func(bins []string) string {
	all := []string{"find", "head"}
	for _, p := range probes {
		all = append(all, p.servers...)
		all = append(all, p.dump...)
	}
	out, err := "", errors.New("no shell")
	if kind, serr := c.Stat(ctx, "/bin/sh"); serr != nil || kind != containers.Missing {
		out, err = c.Output(ctx, append([]string{"/bin/sh", "-c",
			`for b in "$@"; do command -v "$b" >/dev/null 2>&1 && echo "$b"; done; exit 0`, "sh"}, all...)...)
	}
	if err == nil {
		found := map[string]bool{}
		for _, b := range strings.Fields(out) {
			found[b] = true
		}
		return func(bins []string) string {
			for _, b := range bins {
				if found[b] {
					return b
				}
			}
			return ""
		}
	}
	dirs := searchPath(c.Env)
	return func(bins []string) string {
		there := make([]bool, len(bins))
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			slots = make(chan struct{}, statsAtOnce)
		)
		for i, b := range bins {
			for _, dir := range dirs {
				wg.Add(1)
				slots <- struct{}{}
				go func() {
					defer func() { <-slots; wg.Done() }()
					if kind, err := c.Stat(ctx, path.Join(dir, b)); err == nil && (kind == containers.Other || kind == containers.Symlink) {
						mu.Lock()
						there[i] = true
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		for i, b := range bins {
			if there[i] {
				return b
			}
		}
		return ""
	}
}

// statsAtOnce bounds the Engine requests lookInside has in flight without a shell.
const statsAtOnce = 16

// defaultPath is where an exec looks for a program in a container whose configuration sets no
// PATH (the Engine's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// searchPath returns the directories of PATH in env (KEY=VALUE, a container's configuration),
// or the Engine's default when it sets none; relative and repeated entries are left out.
func searchPath(env []string) []string {
	value := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			value = v
		}
	}
	var dirs []string
	seen := map[string]bool{}
	for _, d := range strings.Split(value, ":") {
		if !path.IsAbs(d) || seen[path.Clean(d)] {
			continue
		}
		seen[path.Clean(d)] = true
		dirs = append(dirs, path.Clean(d))
	}
	return dirs
}

// SQLiteFiles lists *.db, *.sqlite and *.sqlite3 files in a running container's mounts whose
// first bytes are an SQLite header. It needs find and head in the container; without them
// it finds nothing.
func SQLiteFiles(ctx context.Context, c *containers.Container) []string {
	var found []string
	for _, dir := range volume.DefaultPaths(c) {
		out, err := c.Output(ctx, "find", dir, "-maxdepth", "4", "-type", "f",
			"(", "-name", "*.db", "-o", "-name", "*.sqlite", "-o", "-name", "*.sqlite3", ")")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(out) {
			if head, err := c.Output(ctx, "head", "-c", "15", f); err == nil && head == "SQLite format 3" {
				found = append(found, f)
			}
		}
	}
	sort.Strings(found)
	if len(found) > 10 {
		found = append(found[:10], "...")
	}
	return found
}

// All returns Strategies, then the probe's findings when the label and image named no
// database.
func All(ctx context.Context, c *containers.Container) []Candidate {
	cands := Strategies(c)
	for _, cand := range cands {
		if cand.Strategy != "volume" {
			return cands
		}
	}
	probed := Probe(ctx, c)
	// Databases found by the probe come before the volume fallback; SQLite files after it,
	// since a database file is never picked without being named.
	var out []Candidate
	for _, p := range probed {
		if p.Strategy != "sqlite" {
			out = append(out, p)
		}
	}
	out = append(out, cands...)
	for _, p := range probed {
		if p.Strategy == "sqlite" {
			out = append(out, p)
		}
	}
	return out
}
