#!/usr/bin/env bash
# make bench: wall time, throughput and peak RSS of `docker backup run`, `restore` and
# `verify` beside the raw shell pipelines on the same data, and the cost of encryption (age)
# on a backup to S3:
#   volume:   tar -c DIR | zstd -T0 -3 > f          and  zstd -dc f | tar -x -C DIR
#             (each also with a sync after it: the tool's backup fsyncs what it stores)
#   postgres: docker exec pg_dump | zstd -T0 -3 > f  and  zstd -dc f | docker exec -i psql
# Data: a ~1 GiB volume of mixed data (random, text, many small files) and a pgbench
# database (BENCH_SCALE, default 20). Both are kept between runs (project docker-backup-bench);
# `test/bench/bench.sh clean` removes them. Each case runs BENCH_RUNS times (default 3); the
# median is shown, each run's time under it. A ratio of two cases run side by side also gives
# the median of the rounds' own ratios. Peak RSS is the plugin process's own (GNU time, maximum
# resident set).
set -euo pipefail
cd "$(dirname "$0")/../.."

P=docker-backup-bench
RUNS=${BENCH_RUNS:-3}
SCALE=${BENCH_SCALE:-20}
PLUGIN=${PLUGIN:-bin/docker-backup}
WORK=${BENCH_DIR:-/var/tmp/docker-backup-bench}

labels() { echo --label com.docker.compose.project=$P --label com.docker.compose.service=$1 --label com.docker.compose.container-number=1; }

if [ "${1:-}" = clean ]; then
  docker rm -f -v $P-files-1 $P-filler-1 $P-db-1 $P-blob-1 $P-sshd $P-incr-1 $P-incr-restored-1 >/dev/null 2>&1 || true
  docker volume rm ${P}_data ${P}_pgdata ${P}_blob ${P}_incr ${P}_incr_restored >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit 0
fi

command -v zstd >/dev/null || { echo "bench: zstd is needed (apt-get install zstd)" >&2; exit 1; }
[ -x "$PLUGIN" ] || make -s bin/docker-backup
PLAIN=$(test/fixtures/build.sh plain)
PAUSE=$(test/fixtures/build.sh pause)
PG=${DOCKER_BACKUP_TEST_POSTGRES_IMAGE:-$(test/fixtures/build.sh postgres)}
mkdir -p "$WORK"

# --- data -----------------------------------------------------------------------------------
# BENCH_ONLY=incremental: only the incremental cases (test/bench/incremental.sh), none of this.
if [ "${BENCH_ONLY:-}" != incremental ]; then
if ! docker volume inspect ${P}_data >/dev/null 2>&1; then
  echo "bench: generating ~1 GiB of mixed data (once)" >&2
  docker volume create ${P}_data >/dev/null
  docker run --rm -v ${P}_data:/data "$PLAIN" sh -c '
    set -e; cd /data; mkdir -p random text small
    head -c 300M /dev/urandom > random/blob.bin
    seq 1 40000000 > text/numbers.txt
    head -c 120M /dev/urandom | base64 > text/base64.txt
    i=0; while [ $i -lt 200 ]; do mkdir small/d$i; j=0
      while [ $j -lt 50 ]; do head -c $(( (i*j % 32 + 1) * 1024 )) /dev/urandom | od -An -x > small/d$i/f$j.txt; j=$((j+1)); done
      i=$((i+1)); done'
fi
docker inspect $P-files-1 >/dev/null 2>&1 || docker run -d --name $P-files-1 $(labels files) -v ${P}_data:/data "$PAUSE" >/dev/null
docker inspect $P-filler-1 >/dev/null 2>&1 || docker run -d --name $P-filler-1 $(labels filler) -v ${P}_data:/data "$PLAIN" >/dev/null

if ! docker inspect $P-db-1 >/dev/null 2>&1; then
  docker run -d --name $P-db-1 $(labels db) -e POSTGRES_USER=bench -e POSTGRES_PASSWORD=bench -e POSTGRES_DB=bench \
    -v ${P}_pgdata:/var/lib/postgresql/data "$PG" >/dev/null
fi
docker start $P-db-1 $P-files-1 >/dev/null
for _ in $(seq 60); do docker exec $P-db-1 pg_isready -h 127.0.0.1 -U bench -q && break; sleep 1; done
if [ "$(docker exec $P-db-1 psql -U bench -d bench -XAtc "select count(*) from pg_tables where tablename='pgbench_accounts'")" = 0 ]; then
  echo "bench: pgbench -i -s $SCALE (once)" >&2
  docker exec $P-db-1 pgbench -i -q -s "$SCALE" -U bench bench >/dev/null 2>&1
fi
VOLDIR=$(docker volume inspect -f '{{.Mountpoint}}' ${P}_data)
VOLBYTES=$(du -sb "$VOLDIR" | cut -f1)
DBBYTES=$(docker exec $P-db-1 psql -U bench -d bench -XAtc "select pg_database_size('bench')")
fi

# --- measuring ------------------------------------------------------------------------------
# once PREP CMD: runs PREP, then CMD timed; sets W (wall seconds), R (peak RSS, KiB) and C
# (user + system CPU seconds of CMD and its children: on a busy machine, the work beside the wall).
once() {
  sh -c "$1" >/dev/null 2>&1
  sync
  /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" sh -c "$2" >/dev/null 2>"$WORK/err" || { echo "bench: $2 failed:" >&2; cat "$WORK/err" >&2; exit 1; }
  local u s
  read -r W R u s < "$WORK/time"
  C=$(printf %.2f "$(echo "$u + $s" | bc)")
}
# report NAME BYTES WALLS RSSS: prints the median wall, rate and the peak RSS of a case.
declare -A WALL ROUNDS SIDE RSS
SIDES=0
report() {
  local med rss n
  n=$(wc -w <<< "$3")
  med=$(tr ' ' '\n' <<< "$3" | grep . | sort -n | sed -n "$(( (n + 1) / 2 ))p")
  rss=$(tr ' ' '\n' <<< "$4" | grep . | sort -n | tail -1)
  WALL[$1]=$med
  ROUNDS[$1]=$3
  RSS[$1]=$rss
  printf '%-34s %8.2f s %9.1f MB/s %9.1f MiB\n' "$1" "$med" "$(echo "$2 / $med / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  printf '    runs (s):%s\n' "$3"
  [ -z "${5:-}" ] || printf '    CPU (s): %s\n' "$5"
}
# measure NAME BYTES PREP CMD: runs CMD RUNS times after PREP, prints median wall, rate, RSS.
measure() {
  local walls="" rsss=""
  local cpus=""
  for _ in $(seq "$RUNS"); do once "$3" "$4"; walls+=" $W"; rsss+=" $R"; cpus+=" $C"; done
  report "$1" "$2" "$walls" "$rsss" "$cpus"
}
# side BYTES NAME PREP CMD [NAME PREP CMD ...]: the cases side by side — RUNS rounds, each
# running every case once in turn, so that a machine (a disk) that slows down or speeds up
# during the bench weighs on them alike — then each printed as by measure.
side() {
  local bytes=$1 i round; shift
  local -a names=() preps=() cmds=() walls=() rsss=() cpus=()
  while [ $# -gt 0 ]; do names+=("$1"); preps+=("$2"); cmds+=("$3"); walls+=(""); rsss+=(""); cpus+=(""); shift 3; done
  for round in $(seq "$RUNS"); do
    for i in "${!names[@]}"; do
      once "${preps[$i]}" "${cmds[$i]}"
      walls[$i]+=" $W"; rsss[$i]+=" $R"; cpus[$i]+=" $C"
    done
  done
  SIDES=$((SIDES + 1))
  for i in "${!names[@]}"; do report "${names[$i]}" "$bytes" "${walls[$i]}" "${rsss[$i]}" "${cpus[$i]}"; SIDE[${names[$i]}]=$SIDES; done
}
# newest prints the key of the newest backup in $B.
newest() { $PLUGIN backup ls --from "$B" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["artifact"])'; }
# ratio CASE BASE: CASE's median over BASE's; for two cases measured side by side, also the
# median of the rounds' own ratios (each round's two runs came minutes apart at most, so a
# slow spell of the machine weighs on both).
ratio() {
  local -a a b; local r="" i n
  read -ra a <<< "${ROUNDS[$1]}"; read -ra b <<< "${ROUNDS[$2]}"
  if [ "${SIDE[$1]:-}" = "${SIDE[$2]:-x}" ] && [ ${#a[@]} = ${#b[@]} ]; then
    for i in "${!a[@]}"; do r+="$(echo "${a[$i]} / ${b[$i]}" | bc -l)"$'\n'; done
    n=${#a[@]}
    r=$(grep . <<< "$r" | sort -n | sed -n "$(( (n + 1) / 2 ))p")
    printf '  %-32s %.2fx of "%s" (median of the rounds: %.2fx)\n' "$1" "$(echo "${WALL[$1]} / ${WALL[$2]}" | bc -l)" "$2" "$r"
  else
    printf '  %-32s %.2fx of "%s"\n' "$1" "$(echo "${WALL[$1]} / ${WALL[$2]}" | bc -l)" "$2"
  fi
}

# ratio_of CASE BASE: the median of the rounds' own ratios (cases side by side), else of medians.
ratio_of() {
  local -a a b; local r="" i n
  read -ra a <<< "${ROUNDS[$1]}"; read -ra b <<< "${ROUNDS[$2]}"
  if [ "${SIDE[$1]:-}" = "${SIDE[$2]:-x}" ] && [ ${#a[@]} = ${#b[@]} ]; then
    for i in "${!a[@]}"; do r+="$(echo "${a[$i]} / ${b[$i]}" | bc -l)"$'\n'; done
    n=${#a[@]}
    grep . <<< "$r" | sort -n | sed -n "$(( (n + 1) / 2 ))p"
  else
    echo "${WALL[$1]} / ${WALL[$2]}" | bc -l
  fi
}
goal() { # NAME MEASURED GOAL UNIT
  local verdict=met
  [ "$(echo "$2 > $3" | bc -l)" = 1 ] && verdict=MISSED
  printf '  %-58s %8.2f%s  goal <= %s%s  %s\n' "$1" "$2" "$4" "$3" "$4" "$verdict"
}
command -v bc >/dev/null || { echo "bench: bc is needed (apt-get install bc)" >&2; exit 1; }
# An age key for the encrypted cases (the age CLI: test/setup.sh installs it).
AGEKEYGEN=$(command -v age-keygen || echo "$(go env GOPATH)/bin/age-keygen")
AGEPUB=
if [ -x "$AGEKEYGEN" ]; then
  [ -f "$WORK/age.key" ] || "$AGEKEYGEN" -o "$WORK/age.key" 2>/dev/null
  AGEPUB=$("$AGEKEYGEN" -y "$WORK/age.key")
fi
echo
[ "${BENCH_ONLY:-}" = incremental ] || echo "volume: $(echo "$VOLBYTES / 1048576" | bc) MiB in $(find "$VOLDIR" | wc -l) entries; postgres: pgbench scale $SCALE, $(echo "$DBBYTES / 1048576" | bc) MiB database"
echo "$(nproc) cores, $RUNS runs each (a raw pipeline and the tool's run side by side, in turn), median wall time; RSS is the peak of the measured command (for pipelines: of its largest process)"
printf '%-34s %10s %14s %13s\n' case wall throughput "peak RSS"

if [ "${BENCH_ONLY:-}" = incremental ]; then
  . test/bench/incremental.sh
  exit 0
fi
B=$WORK/out
RAWOUT=$WORK/rawout
# The data paths: backups read in place on this host (the plugin's default here: the engine is
# local and the bench runs as root), a worker container beside the data (DOCKER_BACKUP_WORKER=on;
# restores always), the Engine's archive API (off).
DOCKER_BACKUP_WORKER=on $PLUGIN backup run files --strategy volume --project $P --to $WORK/warm >/dev/null 2>&1 || true # imports the worker image once
rm -rf $WORK/warm
BW=$WORK/out-worker
# The tool fsyncs what it stores before publishing it: the raw pipeline also with that fsync.
side "$VOLBYTES" \
  "volume raw: tar | zstd -T0 -3" "rm -rf $RAWOUT; mkdir -p $RAWOUT" "tar -C $VOLDIR -c . | zstd -q -T0 -3 > $RAWOUT/raw.tar.zst" \
  "volume raw + fsync of the file" "rm -rf $RAWOUT; mkdir -p $RAWOUT" "tar -C $VOLDIR -c . | zstd -q -T0 -3 > $RAWOUT/raw.tar.zst && sync $RAWOUT/raw.tar.zst" \
  "volume: run (in place)" "rm -rf $B" "$PLUGIN backup run files --strategy volume --project $P --to $B" \
  "volume: run (worker)" "rm -rf $BW" "DOCKER_BACKUP_WORKER=on $PLUGIN backup run files --strategy volume --project $P --to $BW"
cp $RAWOUT/raw.tar.zst $WORK/raw.tar.zst
ratio "volume: run (in place)" "volume raw: tar | zstd -T0 -3"
ratio "volume: run (in place)" "volume raw + fsync of the file"
ratio "volume: run (worker)" "volume raw: tar | zstd -T0 -3"
ratio "volume: run (worker)" "volume raw + fsync of the file"
VART=$(newest)
# Without --strategy the plugin first looks into the container for a database (one exec of a
# shell; the files service has none: one exec per program it looks for).
measure "volume: run (in place), detected" "$VOLBYTES" "rm -rf $B/detected" "$PLUGIN backup run files --project $P --to $B/detected"
DOCKER_BACKUP_WORKER=off measure "volume: run (archive API)" "$VOLBYTES" "rm -rf $B/archive" "$PLUGIN backup run files --strategy volume --project $P --to $B/archive"
ratio "volume: run (archive API)" "volume raw: tar | zstd -T0 -3"
# The worker process alone, on the host, for its peak RSS (in a container it is the same program).
printf '{"op":"backup","paths":["%s"],"compression":"zstd"}\n' "$VOLDIR" > $WORK/worker-request.json
measure "worker process alone (host, > /dev/null)" "$VOLBYTES" "true" "$PLUGIN __worker < $WORK/worker-request.json 2>/dev/null > /dev/null"
# The restored files' write-back: the raw pipeline leaves it to after its end; the tool's
# staged restore writes its files to disk (syncfs) before it moves them into place. By hand, a
# running service's volume is restored with the service stopped: the last raw case does that.
side "$VOLBYTES" \
  "volume raw: zstd -dc | tar -x" "true" "zstd -dc $WORK/raw.tar.zst | tar -x -C $VOLDIR" \
  "volume raw: zstd -dc | tar -x; sync" "true" "zstd -dc $WORK/raw.tar.zst | tar -x -C $VOLDIR && sync" \
  "volume raw: stop; ...; sync; start" "true" "docker stop $P-files-1 && zstd -dc $WORK/raw.tar.zst | tar -x -C $VOLDIR && sync && docker start $P-files-1" \
  "volume: restore (worker)" "true" "$PLUGIN backup restore $VART --from $B --to files --project $P --yes"
ratio "volume: restore (worker)" "volume raw: zstd -dc | tar -x"
ratio "volume: restore (worker)" "volume raw: zstd -dc | tar -x; sync"
ratio "volume: restore (worker)" "volume raw: stop; ...; sync; start"
# Into an empty volume (a new host, a lost volume): nothing to replace, nothing to free.
EMPTY="find $VOLDIR -mindepth 1 -delete"
side "$VOLBYTES" \
  "volume raw: zstd -dc | tar -x, empty" "$EMPTY" "zstd -dc $WORK/raw.tar.zst | tar -x -C $VOLDIR" \
  "volume raw: ... tar -x; sync, empty" "$EMPTY" "zstd -dc $WORK/raw.tar.zst | tar -x -C $VOLDIR && sync -f $VOLDIR" \
  "volume: restore (worker), empty" "$EMPTY" "$PLUGIN backup restore $VART --from $B --to files --project $P --yes"
ratio "volume: restore (worker), empty" "volume raw: zstd -dc | tar -x, empty"
ratio "volume: restore (worker), empty" "volume raw: ... tar -x; sync, empty"
DOCKER_BACKUP_WORKER=off measure "volume: restore (archive API)" "$VOLBYTES" "true" "$PLUGIN backup restore $VART --from $B --to files --project $P --yes"
ratio "volume: restore (archive API)" "volume raw: zstd -dc | tar -x"
measure "volume: docker backup verify" "$VOLBYTES" "true" "$PLUGIN backup verify $VART --from $B"

# Volume to S3 (a local MinIO), when its binary is there (test/setup.sh builds it).
MINIO=$(command -v minio || echo "$(go env GOPATH)/bin/minio")
if [ -x "$MINIO" ]; then
  rm -rf "$WORK/minio"; mkdir -p "$WORK/minio"
  export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret-key
  MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off \
    "$MINIO" server "$WORK/minio" --address 127.0.0.1:19900 --console-address 127.0.0.1:19901 --quiet >/dev/null 2>&1 &
  MINIO_PID=$!
  trap 'kill $MINIO_PID 2>/dev/null' EXIT
  for _ in $(seq 30); do curl -sf http://127.0.0.1:19900/minio/health/live >/dev/null && break; sleep 1; done
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -X PUT http://127.0.0.1:19900/bench >/dev/null
  measure "volume to S3: run (in place)" "$VOLBYTES" "true" "$PLUGIN backup run files --strategy volume --project $P --to 's3://bench/host?endpoint=http://127.0.0.1:19900'"
  DOCKER_BACKUP_WORKER=on measure "volume to S3: run (worker)" "$VOLBYTES" "true" "$PLUGIN backup run files --strategy volume --project $P --to 's3://bench/worker?endpoint=http://127.0.0.1:19900'"
  DOCKER_BACKUP_WORKER=off measure "volume to S3: run (archive API)" "$VOLBYTES" "true" "$PLUGIN backup run files --strategy volume --project $P --to 's3://bench/archive?endpoint=http://127.0.0.1:19900'"
  S3ART=$($PLUGIN backup ls --from 's3://bench/host?endpoint=http://127.0.0.1:19900' --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["artifact"])')
  measure "volume from S3: restore (worker)" "$VOLBYTES" "true" "$PLUGIN backup restore $S3ART --from 's3://bench/host?endpoint=http://127.0.0.1:19900' --to files --project $P --yes"
  DOCKER_BACKUP_WORKER=off measure "volume from S3: restore (archive API)" "$VOLBYTES" "true" "$PLUGIN backup restore $S3ART --from 's3://bench/host?endpoint=http://127.0.0.1:19900' --to files --project $P --yes"
  if [ -n "$AGEPUB" ]; then
    measure "volume to S3, age: docker backup run" "$VOLBYTES" "true" "$PLUGIN backup run files --strategy volume --project $P --to 's3://bench/host?endpoint=http://127.0.0.1:19900' -r $AGEPUB"
    printf '  %-32s %.2fx of the unencrypted run\n' "encryption (age)" "$(echo "${WALL["volume to S3, age: docker backup run"]} / ${WALL["volume to S3: run (in place)"]}" | bc -l)"
  fi
  # One run to two targets at once: memory is one S3 part more, time that of the slower.
  measure "volume to S3 and a directory: run --to --to" "$VOLBYTES" "rm -rf $B; mkdir -p $B" "$PLUGIN backup run files --strategy volume --project $P --to 's3://bench/host2?endpoint=http://127.0.0.1:19900' --to $B"
  # The upload cap: 50 MB of random bytes (incompressible) at 10MiB/s (issue 30: 5 s +- 15 %).
  if ! docker volume inspect ${P}_blob >/dev/null 2>&1; then
    docker volume create ${P}_blob >/dev/null
    docker run --rm -v ${P}_blob:/data "$PLAIN" sh -c 'head -c 50000000 /dev/urandom > /data/blob.bin'
  fi
  docker inspect $P-blob-1 >/dev/null 2>&1 || docker run -d --name $P-blob-1 $(labels blob) -v ${P}_blob:/data "$PAUSE" >/dev/null
  docker start $P-blob-1 >/dev/null
  measure "upload cap: 50 MB to S3 at 10MiB/s" 50000000 "true" "$PLUGIN backup run blob --strategy volume --project $P --to 's3://bench/cap?endpoint=http://127.0.0.1:19900' --limit-upload 10MiB/s"
fi

# Volume to SFTP: OpenSSH's sshd from Debian (the sshd fixture) on loopback, key login, the
# host key checked against a known_hosts file made here.
if command -v ssh-keygen >/dev/null; then
  SSHD=$(test/fixtures/build.sh sshd)
  rm -rf "$WORK/sftp" "$WORK/sftp-keys"; mkdir -p "$WORK/sftp" "$WORK/sftp-keys"; chown 1000:1000 "$WORK/sftp"
  ssh-keygen -q -t ed25519 -N '' -f "$WORK/sftp-keys/id" && ssh-keygen -q -t ed25519 -N '' -f "$WORK/sftp-keys/host"
  docker rm -f $P-sshd >/dev/null 2>&1 || true
  docker run -d --name $P-sshd -p 127.0.0.1:19922:22 -e SFTP_AUTHORIZED_KEYS="$(cat "$WORK/sftp-keys/id.pub")" \
    -v "$WORK/sftp-keys/host:/run/host_key:ro" -e SSHD_HOST_KEY=/run/host_key -v "$WORK/sftp:/home/backup/backups" "$SSHD" >/dev/null
  echo "[127.0.0.1]:19922 $(cut -d' ' -f1,2 "$WORK/sftp-keys/host.pub")" > "$WORK/sftp-keys/known_hosts"
  export DOCKER_BACKUP_SFTP_KEY_FILE=$WORK/sftp-keys/id DOCKER_BACKUP_SFTP_KNOWN_HOSTS=$WORK/sftp-keys/known_hosts
  SFTPURL=sftp://backup@127.0.0.1:19922/backups
  for _ in $(seq 30); do $PLUGIN backup target check --size 0 "$SFTPURL" >/dev/null 2>&1 && break; sleep 1; done
  measure "volume to SFTP: run (in place)" "$VOLBYTES" "true" "$PLUGIN backup run files --strategy volume --project $P --to $SFTPURL"
  SFTPART=$($PLUGIN backup ls --from "$SFTPURL" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["artifact"])')
  measure "volume from SFTP: restore (worker)" "$VOLBYTES" "true" "$PLUGIN backup restore $SFTPART --from $SFTPURL --to files --project $P --yes"
  if docker inspect $P-blob-1 >/dev/null 2>&1; then
    measure "upload cap: 50 MB to SFTP at 10MiB/s" 50000000 "true" "$PLUGIN backup run blob --strategy volume --project $P --to $SFTPURL --limit-upload 10MiB/s"
  fi
  docker rm -f $P-sshd >/dev/null 2>&1 || true
  rm -rf "$WORK/sftp"
else
  echo "bench: ssh-keygen (openssh-client) is not installed: the SFTP cases are left out" >&2
fi

side "$DBBYTES" \
  "postgres raw: pg_dump | zstd" "rm -rf $RAWOUT; mkdir -p $RAWOUT" "docker exec $P-db-1 pg_dump --clean --if-exists -U bench -d bench | zstd -q -T0 -3 > $RAWOUT/raw.sql.zst" \
  "postgres: docker backup run" "rm -rf $B" "$PLUGIN backup run db --project $P --to $B"
cp $RAWOUT/raw.sql.zst $WORK/raw.sql.zst
ratio "postgres: docker backup run" "postgres raw: pg_dump | zstd"
PART=$(newest)
side "$DBBYTES" \
  "postgres raw: zstd -dc | psql" "true" "zstd -dc $WORK/raw.sql.zst | docker exec -i $P-db-1 psql -X -q --single-transaction -v ON_ERROR_STOP=1 -U bench -d bench" \
  "postgres: docker backup restore" "true" "$PLUGIN backup restore $PART --from $B --to db --project $P --yes"
ratio "postgres: docker backup restore" "postgres raw: zstd -dc | psql"
measure "postgres: docker backup verify" "$DBBYTES" "true" "$PLUGIN backup verify $PART --from $B"
measure "postgres, the whole cluster: run --database all" "$DBBYTES" "rm -rf $B" "$PLUGIN backup run db --project $P --to $B --database all"
printf '  %-32s %.2fx of the one-database run\n' "--database all" "$(echo "${WALL["postgres, the whole cluster: run --database all"]} / ${WALL["postgres: docker backup run"]}" | bc -l)"

# --- goals (issue 28) -----------------------------------------------------------------------
echo
echo "goals (ratios: the median of the rounds' own ratios; RSS: the plugin's peak, MiB):"
goal "volume restore into an empty volume / zstd -dc | tar -x; sync -f" "$(ratio_of "volume: restore (worker), empty" "volume raw: ... tar -x; sync, empty")" 1.10 x
goal "postgres restore / zstd -dc | psql --single-transaction" "$(ratio_of "postgres: docker backup restore" "postgres raw: zstd -dc | psql")" 1.05 x
goal "peak RSS, in-place volume backup to a directory" "$(echo "${RSS["volume: run (in place)"]} / 1024" | bc -l)" 48 " MiB"
if [ -n "${RSS["volume to S3: run (in place)"]:-}" ]; then
  goal "peak RSS, volume backup to S3 (MinIO)" "$(echo "${RSS["volume to S3: run (in place)"]} / 1024" | bc -l)" 64 " MiB"
fi
for cap in "S3" "SFTP"; do
  [ -n "${WALL["upload cap: 50 MB to $cap at 10MiB/s"]:-}" ] || continue
  # Both ways: faster than the cap is a cap that does not hold.
  CAPW=${WALL["upload cap: 50 MB to $cap at 10MiB/s"]}
  verdict=met; [ "$(echo "$CAPW < 4.25 || $CAPW > 5.75" | bc -l)" = 1 ] && verdict=MISSED
  printf '  %-58s %8.2f s  goal 5 s +- 15 %%  %s\n' "upload cap: 50 MB at 10MiB/s to $cap" "$CAPW" "$verdict"
done
# 64 MiB on every path: each of the plugin's cases (not the raw pipelines, not the worker process).
while IFS= read -r name; do
  goal "peak RSS, $name" "$(echo "${RSS[$name]} / 1024" | bc -l)" 64 " MiB"
done < <(printf '%s\n' "${!RSS[@]}" | grep -v -e ' raw' -e '^worker process' | sort)

# --- incremental backups (issue 32) -------------------------------------------------------------
. test/bench/incremental.sh
