#!/usr/bin/env bash
# make demo: brings up compose.example.yml (PostgreSQL, a service with a data volume and the
# sidecar) with locally built images and short schedules, waits for scheduled backups to
# appear in the sidecar's volume, shows `docker backup status` and `ls`, then damages the data
# and restores it through the sidecar. `make demo-down` removes the project.
set -euo pipefail
cd "$(dirname "$0")/.."

P=${DEMO_PROJECT:-docker-backup-demo}
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
compose() { "${COMPOSE[@]}" -p "$P" -f compose.example.yml "$@"; }

if [ "${1:-}" = down ]; then
  compose down -v
  exit 0
fi

export POSTGRES_IMAGE=${POSTGRES_IMAGE:-$(test/fixtures/build.sh postgres)}
export FILES_IMAGE=${FILES_IMAGE:-$(test/fixtures/build.sh plain)}
export SIDECAR_IMAGE=${SIDECAR_IMAGE:-docker-backup-sidecar:dev}
# The backups go to a directory beside the repository.
export BACKUP_DIR=${BACKUP_DIR:-$PWD/demo-backups}
mkdir -p "$BACKUP_DIR"
# The sidecar runs as user 65532 with the Docker socket's group: its directory is its own.
chown -R 65532:65532 "$BACKUP_DIR"
export DOCKER_GID=${DOCKER_GID:-$(stat -c %g /var/run/docker.sock)}
# Faster than the example's defaults, so the demo shows several runs and retention at work.
export DB_SCHEDULE=${DB_SCHEDULE:-@every 15s} FILES_SCHEDULE=${FILES_SCHEDULE:-@every 20s}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the example project $P (db every 15 s, keep 3; files every 20 s, keep 2)"
compose up -d
for _ in $(seq 60); do compose exec -T db pg_isready -h 127.0.0.1 -U shop -q && break; sleep 1; done
sql() { compose exec -T db psql -X -q -A -t -U shop -d shop -c "$1"; }

step "Adding some data"
sql "CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, customer text, total numeric, at timestamptz DEFAULT now())"
sql "INSERT INTO orders (customer, total) SELECT 'customer ' || g, g * 1.5 FROM generate_series(1, 1000) g"
compose exec -T files sh -c 'mkdir -p /srv/uploads/img && seq 1 50000 > /srv/uploads/img/list.txt && echo hello > /srv/uploads/readme.txt'
orders=$(sql "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")
uploads=$(compose exec -T files sh -c 'cd /srv/uploads && find . -type f | sort | xargs sha256sum' | sha256sum | cut -c1-16)
echo "database: $orders; uploads tree: $uploads"

step "Waiting for the sidecar's scheduled backups (about a minute)"
for _ in $(seq 120); do
  listing=$(docker backup ls --project "$P" 2>/dev/null || true)
  if [ "$(grep -c "$P/db " <<<"$listing")" -ge 3 ] && [ "$(grep -c "$P/files " <<<"$listing")" -ge 2 ]; then break; fi
  sleep 2
done

step "docker backup status --project $P"
docker backup status --project "$P"

step "docker backup ls --project $P   (retention keeps 3 db and 2 files backups)"
docker backup ls --project "$P"

step "The backups on disk, in $BACKUP_DIR (each artifact with its signed manifest)"
find "$BACKUP_DIR" -type f -not -path '*/_catalog/*' | sort | sed "s|$BACKUP_DIR/||" | head -20

step "A backup now, through the sidecar: docker backup run db / files"
db_key=$(docker backup run db --project "$P" | awk '$1 == "backup" {print $2}')
files_key=$(docker backup run files --project "$P" | awk '$1 == "backup" {print $2}')
echo "db: $db_key"
echo "files: $files_key"

step "Damaging the data"
sql "DELETE FROM orders WHERE id % 2 = 0"
compose exec -T files sh -c 'rm -rf /srv/uploads/img; echo overwritten > /srv/uploads/readme.txt'
echo "database: $(sql "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")"

step "Restoring through the sidecar (checksums verified first)"
docker backup restore "$db_key" --to db --project "$P" --yes
docker backup restore "$files_key" --to files --project "$P" --yes

restored_orders=$(sql "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")
restored_uploads=$(compose exec -T files sh -c 'cd /srv/uploads && find . -type f | sort | xargs sha256sum' | sha256sum | cut -c1-16)
echo "database: $restored_orders; uploads tree: $restored_uploads"
if [ "$restored_orders" != "$orders" ] || [ "$restored_uploads" != "$uploads" ]; then
  echo "demo: the restored data differs from the original" >&2
  exit 1
fi
sidecar=$(compose ps -q backup)
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$sidecar")
step "Done: the data is back. The sidecar keeps running on its schedules: docker backup status -p $P
Backups: $BACKUP_DIR   Metrics: curl http://$ip:9090/metrics   Remove the project: make demo-down"
