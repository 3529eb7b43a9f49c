#!/usr/bin/env bash
# make demo: brings up compose.example.yml (PostgreSQL, a service with a data volume and the
# sidecar) with locally built images, backs both services up into ./demo-backups with the
# `docker backup` plugin, lists them, damages the data, restores the latest backups and
# shows the data is back. `make demo-down` removes the project.
set -euo pipefail
cd "$(dirname "$0")/.."

P=${DEMO_PROJECT:-docker-backup-demo}
OUT=${DEMO_BACKUPS:-$PWD/demo-backups}
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
compose() { "${COMPOSE[@]}" -p "$P" -f compose.example.yml "$@"; }

if [ "${1:-}" = down ]; then
  compose down -v
  exit 0
fi

export POSTGRES_IMAGE=${POSTGRES_IMAGE:-$(test/fixtures/build.sh postgres)}
export FILES_IMAGE=${FILES_IMAGE:-$(test/fixtures/build.sh plain)}
export SIDECAR_IMAGE=${SIDECAR_IMAGE:-docker-backup-sidecar:dev}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the example project $P"
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

step "docker backup detect --project $P"
docker backup detect --project "$P"

step "Backing up into $OUT"
docker backup run db --project "$P" --to "$OUT"
docker backup run files --project "$P" --to "$OUT"

step "docker backup ls --from $OUT"
docker backup ls --from "$OUT"

step "Damaging the data"
sql "DELETE FROM orders WHERE id % 2 = 0; DROP TABLE IF EXISTS orders_archive"
compose exec -T files sh -c 'rm -rf /srv/uploads/img; echo overwritten > /srv/uploads/readme.txt'
echo "database: $(sql "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")"

step "Restoring the latest backups"
docker backup restore latest --from "$OUT" --to db --project "$P" --yes
docker backup restore latest --from "$OUT" --to files --project "$P" --yes

restored_orders=$(sql "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")
restored_uploads=$(compose exec -T files sh -c 'cd /srv/uploads && find . -type f | sort | xargs sha256sum' | sha256sum | cut -c1-16)
echo "database: $restored_orders; uploads tree: $restored_uploads"
if [ "$restored_orders" != "$orders" ] || [ "$restored_uploads" != "$uploads" ]; then
  echo "demo: the restored data differs from the original" >&2
  exit 1
fi
step "Done: the data is back. Backups are in $OUT; 'make demo-down' removes the project."
