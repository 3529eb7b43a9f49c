# Sourced by bench.sh (its helpers: side, report, ratio, ratio_of, goal): incremental backups
# (issue 32) side by side with the raw pipeline, restic 0.14 and borg 1.2.4 (Debian's
# packages, their defaults: restic's zstd "auto", borg's lz4; both encrypted, as ours), on a
# ~950 MB mixed volume of 9.6k files, 1.5 % of it changed between the first and the second
# run: 5 MB appended to one file, a new 10 MB file, one small file deleted.
#   ours: `docker backup run --incremental` (the plugin: the volume read in place, the parent's
#   metadata, unchanged files not read, chunks hashed, compressed and encrypted on every core,
#   an age-encrypted repository in a directory), and `docker backup restore` of the second
#   snapshot into an empty volume. (test/bench/incrbench runs the same data path without the
#   plugin, for profiles: -cpuprofile, -memprofile, -trace.)
command -v restic >/dev/null && command -v borg >/dev/null || {
  echo "bench: restic and borg are needed for the incremental cases (test/setup.sh installs Debian's)" >&2; exit 1; }
INCR=${P}_incr
IW=$WORK/incr
mkdir -p "$IW"
if ! docker volume inspect $INCR >/dev/null 2>&1; then
  echo "bench: generating ~950 MB of mixed data for the incremental cases (once)" >&2
  docker volume create $INCR >/dev/null
  docker run --rm --log-driver none -v $INCR:/data "$PLAIN" sh -c '
    set -e; cd /data; mkdir -p random text small
    head -c 280M /dev/urandom > random/blob.bin
    seq 1 30000000 > text/numbers.txt
    head -c 90M /dev/urandom | base64 > text/base64.txt
    i=0; while [ $i -lt 192 ]; do mkdir small/d$i; j=0
      while [ $j -lt 50 ]; do head -c $(( (i*j % 24 + 1) * 1024 )) /dev/urandom | od -An -x > small/d$i/f$j.txt; j=$((j+1)); done
      i=$((i+1)); done'
fi
IDIR=$(docker volume inspect -f '{{.Mountpoint}}' $INCR)
# The services the plugin backs up (incr) and restores into (incr-restored, an empty volume).
docker inspect $P-incr-1 >/dev/null 2>&1 || docker run -d --name $P-incr-1 $(labels incr) -v $INCR:/data "$PAUSE" >/dev/null
docker inspect $P-incr-restored-1 >/dev/null 2>&1 || docker run -d --name $P-incr-restored-1 $(labels incr-restored) -v ${INCR}_restored:/data "$PAUSE" >/dev/null
RDIR=$(docker volume inspect -f '{{.Mountpoint}}' ${INCR}_restored)
export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
# The volume as it was made (RESET) and the change (CHANGE): the blob's first size and the
# deleted file are kept aside once.
[ -f "$IW/blob.size" ] || stat -c %s "$IDIR/random/blob.bin" > "$IW/blob.size"
[ -f "$IW/f1.txt" ] || cp -p "$IDIR/small/d0/f1.txt" "$IW/f1.txt"
RESET="truncate -s $(cat "$IW/blob.size") $IDIR/random/blob.bin && rm -f $IDIR/new.bin && cp -p $IW/f1.txt $IDIR/small/d0/f1.txt"
CHANGE="head -c 5000000 /dev/urandom >> $IDIR/random/blob.bin && head -c 10000000 /dev/urandom > $IDIR/new.bin && rm $IDIR/small/d0/f1.txt"
sh -c "$RESET"
IBYTES=$(du -sb "$IDIR" | cut -f1)
RESTIC="restic -r $IW/restic"
BORG_INIT="rm -rf $IW/borg && borg init -e repokey-blake2 $IW/borg"
# The plugin's own configuration (its signing key, the repositories' key files).
OURS="DOCKER_CONFIG=$IW/config $PLUGIN backup run incr --strategy volume --project $P --to $IW/ours --incremental ${AGEPUB:+-r $AGEPUB}"
size() { du -sb "$1" | cut -f1; }

echo
# How busy the machine is (the runs are only comparable side by side on a busy one).
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; CPU pressure $(head -1 /proc/pressure/cpu 2>/dev/null | cut -d' ' -f2-4)"; }
echo "incremental: $(load)"
echo "incremental: $(echo "$IBYTES / 1000000" | bc) MB in $(find "$IDIR" -type f | wc -l) files; second runs after 5 MB appended, a new 10 MB file, one small file deleted"
side "$IBYTES" \
  "incr raw: tar | zstd -T0 -3" "$RESET" "tar -C $IDIR -c . | zstd -q -T0 -3 > $IW/raw.tar.zst" \
  "restic 0.14: first" "$RESET && rm -rf $IW/restic && $RESTIC init -q" "$RESTIC backup -q $IDIR" \
  "borg 1.2.4: first" "$RESET && $BORG_INIT" "borg create $IW/borg::first $IDIR" \
  "ours: first" "$RESET && rm -rf $IW/ours $IW/config/docker-backup/repository-*.key" "$OURS"
declare -A FIRST
FIRST[raw]=$(stat -c %s "$IW/raw.tar.zst"); FIRST[restic]=$(size "$IW/restic"); FIRST[borg]=$(size "$IW/borg"); FIRST[ours]=$(size "$IW/ours")
ratio "restic 0.14: first" "incr raw: tar | zstd -T0 -3"
ratio "borg 1.2.4: first" "incr raw: tar | zstd -T0 -3"
ratio "ours: first" "incr raw: tar | zstd -T0 -3"
# Each round makes its first run again (in the preparation, untimed), then changes the volume.
side "$IBYTES" \
  "incr raw, changed: tar | zstd" "$RESET && $CHANGE" "tar -C $IDIR -c . | zstd -q -T0 -3 > $IW/raw.tar.zst" \
  "restic 0.14: second" "$RESET && rm -rf $IW/restic && $RESTIC init -q && $RESTIC backup -q $IDIR && du -sb $IW/restic | cut -f1 > $IW/restic.first && $CHANGE" "$RESTIC backup -q $IDIR" \
  "borg 1.2.4: second" "$RESET && $BORG_INIT && borg create $IW/borg::first $IDIR && du -sb $IW/borg | cut -f1 > $IW/borg.first && $CHANGE" "borg create $IW/borg::second $IDIR" \
  "ours: second" "$RESET && rm -rf $IW/ours $IW/config/docker-backup/repository-*.key && $OURS && du -sb $IW/ours | cut -f1 > $IW/ours.first && $CHANGE" "$OURS"
declare -A SECOND
for t in restic borg ours; do SECOND[$t]=$(( $(size "$IW/$t") - $(cat "$IW/$t.first") )); done
ratio "restic 0.14: second" "incr raw, changed: tar | zstd"
ratio "borg 1.2.4: second" "incr raw, changed: tar | zstd"
ratio "ours: second" "incr raw, changed: tar | zstd"
ratio "ours: second" "restic 0.14: second"
ratio "ours: second" "borg 1.2.4: second"
# The second snapshot restored into an empty volume beside the raw pipeline's archive of the
# same data into an empty directory.
SNAP=$(DOCKER_CONFIG=$IW/config $PLUGIN backup ls --from "$IW/ours" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["artifact"])')
side "$IBYTES" \
  "incr raw: zstd -dc | tar -x" "rm -rf $IW/r && mkdir $IW/r" "zstd -dc $IW/raw.tar.zst | tar -x -C $IW/r" \
  "ours: restore (plugin)" "find $RDIR -mindepth 1 -delete" "DOCKER_CONFIG=$IW/config $PLUGIN backup restore $SNAP --from $IW/ours --to incr-restored --project $P --yes"
ratio "ours: restore (plugin)" "incr raw: zstd -dc | tar -x"
rm -rf "$IW/r"; find "$RDIR" -mindepth 1 -delete
echo "stored (MB): raw $(echo "${FIRST[raw]} / 1000000" | bc); first run, then what the second added:"
for t in restic borg ours; do
  printf '  %-8s %8.1f MB  + %6.1f MB (%.2f %%)\n' "$t" "$(echo "${FIRST[$t]} / 1000000" | bc -l)" "$(echo "${SECOND[$t]} / 1000000" | bc -l)" "$(echo "100 * ${SECOND[$t]} / ${FIRST[$t]}" | bc -l)"
done
sh -c "$RESET"
echo "incremental, at the end: $(load)"
echo
echo "goals of issue 32 (ratios: the median of the rounds' own ratios):"
goal "incremental: first run / tar | zstd -T0 -3" "$(ratio_of "ours: first" "incr raw: tar | zstd -T0 -3")" 1.25 x
goal "incremental: second run / tar | zstd -T0 -3" "$(ratio_of "ours: second" "incr raw, changed: tar | zstd")" 0.25 x
goal "incremental: second run / restic's second run" "$(ratio_of "ours: second" "restic 0.14: second")" 1.00 x
goal "incremental: second run / borg's second run" "$(ratio_of "ours: second" "borg 1.2.4: second")" 1.00 x
goal "incremental: first run stored / restic's" "$(echo "${FIRST[ours]} / ${FIRST[restic]}" | bc -l)" 1.00 x
goal "incremental: second run stored / first run stored" "$(echo "100 * ${SECOND[ours]} / ${FIRST[ours]}" | bc -l)" 5 " %"
goal "incremental: restore / zstd -dc | tar -x" "$(ratio_of "ours: restore (plugin)" "incr raw: zstd -dc | tar -x")" 1.20 x
for c in "ours: first" "ours: second" "ours: restore (plugin)"; do
  goal "incremental: peak RSS, $c" "$(echo "${RSS[$c]} / 1024" | bc -l)" 128 " MiB"
done
