package detect

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestRepository(t *testing.T) {
	cases := map[string]string{
		"postgres":                            "postgres",
		"postgres:16-alpine":                  "postgres",
		"library/postgres:16":                 "postgres",
		"docker.io/library/postgres:16":       "postgres",
		"ghcr.io/org/postgres:16@sha256:abcd": "org/postgres",
		"localhost:5000/postgres":             "postgres",
		"timescale/timescaledb:latest-pg16":   "timescale/timescaledb",
		"Bitnami/PostgreSQL":                  "bitnami/postgresql",
	}
	for in, want := range cases {
		if got := Repository(in); got != want {
			t.Errorf("Repository(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStrategies(t *testing.T) {
	vol := []container.MountPoint{{Type: mount.TypeVolume, Destination: "/var/lib/postgresql/data", RW: true}}
	cases := []struct {
		name string
		c    containers.Container
		want []string
	}{
		{"official postgres", containers.Container{Image: "postgres:16", Mounts: vol}, []string{"postgres", "volume"}},
		{"postgis", containers.Container{Image: "postgis/postgis:16-3.4"}, []string{"postgres"}},
		{"timescale", containers.Container{Image: "timescale/timescaledb:latest-pg16"}, []string{"postgres"}},
		{"bitnami", containers.Container{Image: "bitnami/postgresql:16"}, []string{"postgres"}},
		{"pgvector", containers.Container{Image: "pgvector/pgvector:pg16"}, []string{"postgres"}},
		{"custom image, official env", containers.Container{Image: "acme/db:1", Env: []string{"PG_MAJOR=16", "PATH=/bin"}}, []string{"postgres"}},
		{"sidecar is never backed up", containers.Container{Image: "docker-backup-sidecar", Labels: map[string]string{labels.Sidecar: "true"}, Mounts: vol}, nil},
		{"enable=false excludes", containers.Container{Image: "postgres:16", Labels: map[string]string{labels.Enable: "false"}, Mounts: vol}, nil},
		{"app that connects to postgres is not postgres", containers.Container{Image: "acme/shop-web:3", Env: []string{"POSTGRES_PASSWORD=x", "POSTGRES_HOST=db", "DATABASE_URL=postgres://db"}}, nil},
		{"mariadb", containers.Container{Image: "mariadb:11"}, []string{"mysql"}},
		{"mysql", containers.Container{Image: "mysql:8.4"}, []string{"mysql"}},
		{"percona", containers.Container{Image: "percona/percona-server:8.0"}, []string{"mysql"}},
		{"bitnami mariadb", containers.Container{Image: "bitnami/mariadb:11.4"}, []string{"mysql"}},
		{"mongo", containers.Container{Image: "mongo:7"}, []string{"mongo"}},
		{"mongodb community", containers.Container{Image: "mongodb/mongodb-community-server:7.0-ubi8"}, []string{"mongo"}},
		{"redis", containers.Container{Image: "redis:7-alpine"}, []string{"redis"}},
		{"valkey", containers.Container{Image: "valkey/valkey:8"}, []string{"redis"}},
		{"keydb", containers.Container{Image: "eqalpha/keydb"}, []string{"redis"}},
		{"redis stack", containers.Container{Image: "redis/redis-stack-server:latest"}, []string{"redis"}},
		{"custom mariadb image, official env", containers.Container{Image: "acme/db", Env: []string{"MARIADB_VERSION=1:11.4"}}, []string{"mysql"}},
		{"mongo-express is not a database", containers.Container{Image: "mongo-express:1"}, nil},
		{"redis-commander is not a database", containers.Container{Image: "rediscommander/redis-commander"}, nil},
		{"redis exporter is not a database", containers.Container{Image: "oliver006/redis_exporter"}, nil},
		{"mysqld exporter is not a database", containers.Container{Image: "prom/mysqld-exporter"}, nil},
		{"phpmyadmin is not a database", containers.Container{Image: "phpmyadmin:5"}, nil},
		{"redisinsight is not a database", containers.Container{Image: "redis/redisinsight"}, nil},
		{"label wins", containers.Container{Image: "acme/thing", Labels: map[string]string{labels.Strategy: "volume"}, Mounts: vol}, []string{"volume"}},
		{"postgrest is not a database", containers.Container{Image: "postgrest/postgrest", Env: []string{"PGRST_DB_URI=x"}}, nil},
		{"exporter is not a database", containers.Container{Image: "prometheuscommunity/postgres-exporter", Env: []string{"DATA_SOURCE_NAME=x"}}, nil},
		{"pgadmin is not a database", containers.Container{Image: "dpage/pgadmin4", Env: []string{"PGADMIN_DEFAULT_EMAIL=x"}}, nil},
		{"app with a volume", containers.Container{Image: "nginx", Mounts: []container.MountPoint{{Type: mount.TypeVolume, Destination: "/usr/share/nginx/html", RW: true}}}, []string{"volume"}},
		{"docker socket is not data", containers.Container{Image: "traefik", Mounts: []container.MountPoint{{Type: mount.TypeBind, Destination: "/var/run/docker.sock", RW: true}}}, nil},
		{"read-only config bind is not data", containers.Container{Image: "nginx", Mounts: []container.MountPoint{{Type: mount.TypeBind, Destination: "/etc/nginx/nginx.conf", RW: false}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Strategies(&tc.c)
			var names []string
			for _, c := range got {
				names = append(names, c.Strategy)
				if c.Reason == "" {
					t.Errorf("%s has no reason", c.Strategy)
				}
			}
			if len(names) != len(tc.want) {
				t.Fatalf("Strategies = %v, want %v", names, tc.want)
			}
			for i := range names {
				if names[i] != tc.want[i] {
					t.Fatalf("Strategies = %v, want %v", names, tc.want)
				}
			}
		})
	}
}

// TestSearchPath: the directories a shell-less container's programs are looked for in are its
// PATH's absolute ones, each once, in order; without PATH, the Engine's default.
func TestSearchPath(t *testing.T) {
	cases := []struct {
		env  []string
		want string
	}{
		{nil, "/usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin"},
		{[]string{"HOME=/root"}, "/usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin"},
		{[]string{"PATH=/opt/bitnami/postgresql/bin:/usr/bin"}, "/opt/bitnami/postgresql/bin /usr/bin"},
		{[]string{"PATH=.:bin::/usr/bin/:/usr/bin:/bin"}, "/usr/bin /bin"},
		{[]string{"PATH="}, ""},
	}
	for _, c := range cases {
		if got := strings.Join(searchPath(c.env), " "); got != c.want {
			t.Errorf("searchPath(%q) = %q, want %q", c.env, got, c.want)
		}
	}
}
