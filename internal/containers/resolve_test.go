package containers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
)

// Resolve finds a service's container by its compose labels (the lowest-numbered replica,
// never a one-off of `docker compose run`, running or not), else — with no project given — a
// container by name or ID, else the service in the guessed project.
func TestResolve(t *testing.T) {
	e := enginetest.New(
		enginetest.Service("shop", "db", enginetest.WithReplica(2)),
		enginetest.Service("shop", "db", enginetest.WithReplica(10)),
		enginetest.Service("shop", "db", enginetest.WithReplica(3), enginetest.Stopped()),
		enginetest.Service("shop", "db", enginetest.OneOff()),
		enginetest.Service("shop", "web", enginetest.Stopped()),
		enginetest.Service("shop", "cron", enginetest.OneOff()),
		enginetest.Service("shop", "api", enginetest.WithReplica(1)),
		enginetest.Service("blog", "api"),
		enginetest.Service("here", "queue"),
		enginetest.Service("there", "queue"),
		enginetest.Container("standalone-db"),
		enginetest.Container("unnumbered", enginetest.WithProject("misc"), enginetest.WithService("app")),
		enginetest.Container("numbered", enginetest.WithProject("misc"), enginetest.WithService("app"), enginetest.WithReplica(7)),
	)
	for _, tc := range []struct {
		name                      string
		project, arg, guess, want string // want: the container's name
		err                       error
		says                      string
	}{
		{name: "the lowest-numbered replica, by number not text", project: "shop", arg: "db", want: "shop-db-2"},
		{name: "without a project, the one project that has it", arg: "db", want: "shop-db-2"},
		{name: "a stopped service", project: "shop", arg: "web", want: "shop-web-1"},
		{name: "a replica without a number comes last", project: "misc", arg: "app", want: "misc-app-7"},
		{name: "a one-off is never the service", project: "shop", arg: "cron", err: containers.ErrNotFound, says: `compose project "shop" has no service "cron"`},
		{name: "the project narrows", project: "blog", arg: "api", want: "blog-api-1"},
		{name: "a service of several projects needs one", arg: "api", says: `service "api" exists in several compose projects (blog, shop): choose one with --project`},
		{name: "a container by name", arg: "standalone-db", want: "standalone-db"},
		{name: "a container by ID prefix", arg: e.IDOf("standalone-db")[:12], want: "standalone-db"},
		{name: "a container by name is not looked for in a project", project: "shop", arg: "standalone-db", err: containers.ErrNotFound},
		{name: "the guessed project is tried last", arg: "nosuch", guess: "shop", err: containers.ErrNotFound, says: "no compose service named"},
		{name: "the guess does not decide between projects", arg: "queue", guess: "here", says: "several compose projects (here, there)"},
		{name: "nothing", arg: "nosuch", err: containers.ErrNotFound, says: `no compose service named "nosuch" on this Docker host, and no container by that name`},
		{name: "no such project", project: "nope", arg: "db", err: containers.ErrNotFound, says: `no compose project "nope" on this Docker host (projects with containers: blog, here, misc, shop, there)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := containers.Resolve(context.Background(), e, tc.project, tc.arg, tc.guess)
			if tc.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Name != tc.want {
					t.Errorf("found %s, want %s", c.Name, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("found %s, want an error", c.Name)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %q does not wrap %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

// A service named in the guessed project when it is in no other.
func TestResolveGuess(t *testing.T) {
	e := enginetest.New(enginetest.Service("myapp", "db"))
	c, err := containers.Resolve(context.Background(), e, "", "db", "myapp")
	if err != nil || c.Name != "myapp-db-1" {
		t.Fatalf("%v, %v", c, err)
	}
}

// Services lists one container per service (the lowest-numbered replica, no one-off),
// sorted by service; Projects, every compose project, sorted.
func TestServicesAndProjects(t *testing.T) {
	e := enginetest.New(
		enginetest.Service("shop", "web", enginetest.WithReplica(2)),
		enginetest.Service("shop", "web", enginetest.WithReplica(1), enginetest.Stopped()),
		enginetest.Service("shop", "db"),
		enginetest.Service("shop", "cron", enginetest.OneOff()),
		enginetest.Service("blog", "db"),
		enginetest.Container("standalone"),
	)
	ctx := context.Background()
	svcs, err := containers.Services(ctx, e, "shop")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range svcs {
		names = append(names, c.Name)
	}
	if want := []string{"shop-db-1", "shop-web-1"}; !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	if projects, err := containers.Projects(ctx, e); err != nil || !slices.Equal(projects, []string{"blog", "shop"}) {
		t.Errorf("projects %v, %v", projects, err)
	}
	if _, err := containers.Services(ctx, e, "nope"); !errors.Is(err, containers.ErrNotFound) || !strings.Contains(err.Error(), "projects with containers: blog, shop") {
		t.Errorf("no such project: %v", err)
	}
}

func TestContainerNames(t *testing.T) {
	e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithEnv("A=1", "B=x=y", "EMPTY=")), enginetest.Container("solo"))
	db, solo := inspect(t, e, "shop-db-1"), inspect(t, e, "solo")
	if db.String() != "shop/db (container shop-db-1)" || solo.String() != "container solo" {
		t.Errorf("names %q, %q", db, solo)
	}
	for k, want := range map[string]string{"A": "1", "B": "x=y", "EMPTY": ""} {
		if v, ok := db.Getenv(k); !ok || v != want {
			t.Errorf("Getenv(%s) = %q, %v", k, v, ok)
		}
	}
	if _, ok := db.Getenv("NOPE"); ok {
		t.Error("Getenv of an unset variable")
	}
}

func inspect(t *testing.T, e *enginetest.Engine, name string) *containers.Container {
	t.Helper()
	c, err := containers.Inspect(context.Background(), e, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
