#!/usr/bin/env bash
# ohreq benchmarks: build/ohreq against curl, both downloading from the same private
# nginx on 127.0.0.1. Run from the repo root with `make bench` (or `bash benches/run.sh`).
#
#   ROUNDS=N   paired rounds (default 5); the tool that goes first alternates per round
#   PROFILE=1  afterwards, one `strace -c -f` and one `perf stat` of each ohreq case
#   KEEP=1     keep the temp dir (data, logs) instead of deleting it
#   OHREQ=PATH the CLI to measure (default build/ohreq)
#
# Prints per-round times, median ratios ohreq/curl and a summary block, which it also
# writes to benches/last-results.txt. Exits non-zero only when a run is broken (a tool
# failed, an output is wrong, nginx would not start); missed targets are only reported.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OHREQ=${OHREQ:-$REPO/build/ohreq} # override to benchmark another build
RESULTS=$REPO/benches/last-results.txt
BIG_BYTES=$((1024 * 1024 * 1024))
SMALL_N=1000
SMALL_BYTES=16384
PAR=16

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*"; }

[[ -x $OHREQ ]] || die "$OHREQ missing: run 'make build/ohreq' (or 'make bench') first"
command -v curl >/dev/null || die "curl not found"

# Only loopback traffic: no proxy may intercept either tool (libcurl honours these too).
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1

# ---------------------------------------------------------------- 1. tools
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo -n "$@"
    else die "need root to install packages ($*)"; fi
}
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -Eq 'Candidate: [^(]'; }

NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
pkgs=()
if [[ -z $NGINX ]]; then
    if has_candidate nginx-light; then pkgs+=(nginx-light)
    elif has_candidate nginx; then pkgs+=(nginx)
    else
        as_root apt-get update -qq
        if has_candidate nginx-light; then pkgs+=(nginx-light); else pkgs+=(nginx); fi
    fi
fi
[[ -x /usr/bin/time ]] || pkgs+=(time)
if ((${#pkgs[@]})); then
    log "installing ${pkgs[*]}"
    # Installing only: the system nginx's config and service are left as the package makes
    # them; the benchmark runs its own nginx below.
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx not found after install"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found after install"

# ---------------------------------------------------------------- 2. temp dir, data
BASE=${TMPDIR:-/tmp}
need_kib=$((3 * 1024 * 1024))
free_kib=$(df -Pk "$BASE" | awk 'NR == 2 { print $4 }')
((free_kib >= need_kib)) || die "$BASE has $((free_kib / 1024)) MiB free; need 3 GiB"

WORK=$(mktemp -d "$BASE/ohreq-bench.XXXXXX")
chmod 755 "$WORK"
NGINX_PID=
cleanup() {
    local rc=$?
    if [[ -n $NGINX_PID ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ $KEEP == 1 ]]; then echo "bench: kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DATA=$WORK/data
OUT=$WORK/out
LOGS=$WORK/logs
mkdir -p "$DATA/small" "$LOGS" "$WORK/ohreq-tmp" "$WORK/nginx"
# ohreq keeps its throwaway task store under TMPDIR: inside $WORK, on the same disk.
export TMPDIR=$WORK/ohreq-tmp

log "generating data in $WORK"
head -c "$BIG_BYTES" </dev/urandom >"$DATA/big.bin"
head -c $((SMALL_N * SMALL_BYTES)) </dev/urandom | (cd "$DATA/small" && split -b "$SMALL_BYTES" -d -a 4 - s)
echo ok >"$DATA/ready"
chmod -R a+rX "$DATA"
(( $(find "$DATA/small" -type f | wc -l) == SMALL_N )) || die "small file set incomplete"
sync # the sources' writeback must not run during the timed downloads

# ---------------------------------------------------------------- private nginx
start_nginx() {
    local port=$1 user_line=
    [[ $EUID -eq 0 ]] && user_line="user root;" # workers must read $WORK, which is root's
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
$user_line
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $LOGS/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $LOGS/nginx-access.log;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$port;
        root $DATA;
    }
}
EOF
    "$NGINX" -e "$LOGS/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK/nginx" \
        >>"$LOGS/nginx-stdout.log" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 50); do
        if curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$port/ready"; then return 0; fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
    return 1
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PORT=
for _ in $(seq 20); do
    p=$((20000 + RANDOM % 40000))
    port_busy "$p" && continue
    if start_nginx "$p"; then PORT=$p; break; fi
done
[[ -n $PORT ]] || { tail -5 "$LOGS/nginx-error.log" >&2 || true; die "cannot start nginx"; }
BASE_URL=http://127.0.0.1:$PORT
log "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on $BASE_URL (pid $NGINX_PID)"

BIG_URL=$BASE_URL/big.bin
SMALL_URLS=()
for f in "$DATA"/small/s*; do SMALL_URLS+=("$BASE_URL/small/${f##*/}"); done
printf 'url = "%s"\n' "${SMALL_URLS[@]}" >"$WORK/small-urls.curlrc"

# ---------------------------------------------------------------- helpers
now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

fresh_out() { rm -rf "$OUT"; mkdir -p "$OUT"; sync; }

run_logged() { # name cmd...: runs cmd with output to a log, dies with the log on failure
    local name=$1; shift
    if ! "$@" >"$LOGS/$name.log" 2>&1; then
        echo "bench: '$name' failed: $*" >&2
        tail -20 "$LOGS/$name.log" >&2 || true
        exit 1
    fi
}

check_big() { # tool do_cmp
    local f=$OUT/big.bin size
    [[ -f $f ]] || die "$1: $f missing"
    size=$(stat -c %s "$f")
    ((size == BIG_BYTES)) || die "$1: big.bin is $size bytes, want $BIG_BYTES"
    if [[ $2 == 1 ]]; then cmp -s "$f" "$DATA/big.bin" || die "$1: big.bin differs from the source"; fi
    (( $(find "$OUT" -mindepth 1 | wc -l) == 1 )) || die "$1: stray files in $OUT: $(ls "$OUT")"
}

check_small() { # tool do_cmp
    local all ok
    all=$(find "$OUT" -mindepth 1 | wc -l)
    ok=$(find "$OUT" -type f -name 's[0-9]*' -size "${SMALL_BYTES}c" | wc -l)
    ((all == SMALL_N && ok == SMALL_N)) || die "$1: $ok good of $all entries in $OUT, want $SMALL_N"
    if [[ $2 == 1 ]]; then diff -rq "$DATA/small" "$OUT" >/dev/null || die "$1: small files differ from the sources"; fi
}

# Each run sets T (seconds) and, where measured, RSS (KiB) / T_SYNC (seconds incl. sync).
run_big_ohreq() {
    fresh_out
    local t0 t1
    t0=$(now)
    run_logged big-ohreq /usr/bin/time -f %M -o "$LOGS/rss" \
        "$OHREQ" get --quiet --allow-http -d "$OUT" "$BIG_URL"
    t1=$(now)
    T=$(sub "$t1" "$t0"); RSS=$(tail -1 "$LOGS/rss")
    check_big ohreq "$1"
}
run_big_curl() {
    fresh_out
    local t0 t1
    t0=$(now)
    run_logged big-curl /usr/bin/time -f %M -o "$LOGS/rss" \
        curl -sS --fail --noproxy '*' -o "$OUT/big.bin" "$BIG_URL"
    sync "$OUT/big.bin" "$OUT" # same durability as ohreq: file and directory entry on disk
    t1=$(now)
    T=$(sub "$t1" "$t0"); RSS=$(tail -1 "$LOGS/rss")
    check_big curl "$1"
}
run_small_ohreq() {
    fresh_out
    local t0 t1
    t0=$(now)
    run_logged small-ohreq "$OHREQ" get --quiet --allow-http --parallel "$PAR" -d "$OUT" "${SMALL_URLS[@]}"
    t1=$(now)
    T=$(sub "$t1" "$t0")
    check_small ohreq "$1"
}
run_small_curl() {
    fresh_out
    local t0 t1 t2
    t0=$(now)
    run_logged small-curl curl -sS --no-progress-meter --fail --noproxy '*' \
        --parallel --parallel-max "$PAR" --output-dir "$OUT" --remote-name-all -K "$WORK/small-urls.curlrc"
    t1=$(now)
    sync "$OUT"/s* "$OUT" # fsync every file, then the directory: what ohreq does per file
    t2=$(now)
    T=$(sub "$t1" "$t0"); T_SYNC=$(sub "$t2" "$t0")
    check_small curl "$1"
}

# ---------------------------------------------------------------- 3. rounds
log "warm-up (untimed)"
run_big_ohreq 1; run_big_curl 1; run_small_ohreq 1; run_small_curl 1

BO=() BC=() BR=() RSS_O=() RSS_C=() SO=() SC=() SCS=() SR=() SRS=()
machine_load() { # load average, and the share of time tasks waited on I/O (PSI, when there)
    local io=
    [[ -r /proc/pressure/io ]] && io=", io-wait $(awk '/^some/ { sub("avg10=", "", $2); print $2 }' /proc/pressure/io)%"
    echo "$(cut -d' ' -f1-3 /proc/loadavg)$io"
}
LOAD0=$(machine_load)
log "$ROUNDS paired rounds; times in seconds, ratio = ohreq / curl (machine load: $LOAD0)"
printf '%-5s %-6s | %8s %10s %6s | %8s %8s %10s %6s %6s\n' round first \
    "1G ohreq" "1G curl+s" ratio "sm ohreq" "sm curl" "sm curl+s" r r+s
for ((r = 1; r <= ROUNDS; r++)); do
    do_cmp=$((r == 1 ? 1 : 0)) # compare contents in the first timed round (and the warm-up)
    if ((r % 2)); then first=ohreq; else first=curl; fi
    if [[ $first == ohreq ]]; then
        run_big_ohreq $do_cmp; bo=$T; rso=$RSS
        run_big_curl $do_cmp; bc=$T; rsc=$RSS
        run_small_ohreq $do_cmp; so=$T
        run_small_curl $do_cmp; sc=$T; scs=$T_SYNC
    else
        run_big_curl $do_cmp; bc=$T; rsc=$RSS
        run_big_ohreq $do_cmp; bo=$T; rso=$RSS
        run_small_curl $do_cmp; sc=$T; scs=$T_SYNC
        run_small_ohreq $do_cmp; so=$T
    fi
    br=$(div "$bo" "$bc"); sr=$(div "$so" "$sc"); srs=$(div "$so" "$scs")
    BO+=("$bo") BC+=("$bc") BR+=("$br") RSS_O+=("$rso") RSS_C+=("$rsc")
    SO+=("$so") SC+=("$sc") SCS+=("$scs") SR+=("$sr") SRS+=("$srs")
    printf '%-5s %-6s | %8s %10s %6s | %8s %8s %10s %6s %6s\n' "$r" "$first" \
        "$bo" "$bc" "$br" "$so" "$sc" "$scs" "$sr" "$srs"
done
rm -rf "$OUT"

printf '%-5s %-6s | %8s %10s %6s | %8s %8s %10s %6s %6s\n' median "" \
    "$(median "${BO[@]}")" "$(median "${BC[@]}")" "$(median "${BR[@]}")" \
    "$(median "${SO[@]}")" "$(median "${SC[@]}")" "$(median "${SCS[@]}")" \
    "$(median "${SR[@]}")" "$(median "${SRS[@]}")"
echo "peak RSS per round (MiB): ohreq $(for k in "${RSS_O[@]}"; do printf '%s ' "$(mib "$k")"; done)| curl $(for k in "${RSS_C[@]}"; do printf '%s ' "$(mib "$k")"; done)"

LOAD1=$(machine_load)

# ---------------------------------------------------------------- optional profile
if [[ $PROFILE == 1 ]]; then
    if command -v strace >/dev/null; then
        fresh_out
        log "strace -c -f: ohreq get 1 GiB"
        strace -c -f -o "$LOGS/strace-big" "$OHREQ" get --quiet --allow-http -d "$OUT" "$BIG_URL"
        head -15 "$LOGS/strace-big"
        fresh_out
        log "strace -c -f: ohreq get $SMALL_N x 16 KiB, $PAR parallel"
        strace -c -f -o "$LOGS/strace-small" "$OHREQ" get --quiet --allow-http --parallel "$PAR" -d "$OUT" "${SMALL_URLS[@]}"
        head -15 "$LOGS/strace-small"
    fi
    if command -v perf >/dev/null; then
        fresh_out
        log "perf stat: ohreq get 1 GiB"
        perf stat -o "$LOGS/perf-big" -e task-clock,context-switches,page-faults -- \
            "$OHREQ" get --quiet --allow-http -d "$OUT" "$BIG_URL" || true
        grep -Ev '^\s*$|^#|counter stats' "$LOGS/perf-big" || true
        fresh_out
        log "perf stat: ohreq get $SMALL_N x 16 KiB"
        perf stat -o "$LOGS/perf-small" -e task-clock,context-switches,page-faults -- \
            "$OHREQ" get --quiet --allow-http --parallel "$PAR" -d "$OUT" "${SMALL_URLS[@]}" || true
        grep -Ev '^\s*$|^#|counter stats' "$LOGS/perf-small" || true
    fi
    rm -rf "$OUT"
fi

# ---------------------------------------------------------------- 4. summary
rss_o=$(mib "$(maxof "${RSS_O[@]}")"); rss_c=$(mib "$(maxof "${RSS_C[@]}")")
summary=$(
    echo "== summary (median of $ROUNDS rounds, ohreq / curl, same loopback nginx)"
    printf '%-46s %5sx   (target <= 0.95)\n' "1 GiB download to disk (curl -o + sync):" "$(median "${BR[@]}")"
    printf '%-46s %5sx   (target <= 0.80)\n' "$SMALL_N x 16 KiB, $PAR parallel (curl --parallel):" "$(median "${SR[@]}")"
    printf '%-46s %5sx\n' "$SMALL_N x 16 KiB, $PAR parallel (curl + sync):" "$(median "${SRS[@]}")"
    echo "peak RSS ohreq get 1 GiB: $rss_o MiB (target < 32 MiB); curl: $rss_c MiB"
    echo "medians (s): 1 GiB ohreq $(median "${BO[@]}") curl+sync $(median "${BC[@]}");" \
        "small ohreq $(median "${SO[@]}") curl $(median "${SC[@]}") curl+sync $(median "${SCS[@]}")"
    echo "machine load before / after the rounds (loadavg 1/5/15 min, io-wait avg10): $LOAD0 / $LOAD1"
    echo "($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r), $(curl --version | head -1 | cut -d' ' -f1-2), nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), out dir fs $(df -PT "$WORK" | awk 'NR == 2 { print $2 }'))"
)
echo
echo "$summary"
echo "$summary" >"$RESULTS"
