#!/usr/bin/env bash
# ohreq benchmarks: build/ohreq against curl, both downloading from and uploading to the
# same private nginx on 127.0.0.1. Run from the repo root with `make bench` (or
# `bash benches/run.sh`).
#
#   ROUNDS=N   paired rounds (default 5); the tool that goes first alternates per round
#   PROFILE=1  afterwards, one `strace -c -f` and one `perf stat` of each ohreq case
#              (downloads and uploads)
#   KEEP=1     keep the temp dir (data, logs) instead of deleting it
#   POST_REPS=N uploads per tool and round in the 64 MiB POST case (default 5), each one
#              timed and checked on its own; the round's time is their mean (one is ~40 ms)
#   OHREQ=PATH the CLI to measure (default build/ohreq)
#
# Prints per-round times, median ratios ohreq/curl and a summary block, which it also
# writes to benches/last-results.txt. Exits non-zero only when a run is broken (a tool
# failed, an output is wrong, nginx would not start); missed targets are only reported.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}
POST_REPS=${POST_REPS:-5}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
[[ $POST_REPS =~ ^[1-9][0-9]*$ ]] || { echo "POST_REPS must be a positive integer" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OHREQ=${OHREQ:-$REPO/build/ohreq} # override to benchmark another build
RESULTS=$REPO/benches/last-results.txt
BIG_BYTES=$((1024 * 1024 * 1024))
SMALL_N=1000
SMALL_BYTES=16384
PAR=16
MID_BYTES=$((64 * 1024 * 1024)) # multipart POST upload; the PUT upload sends big.bin

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*"; }

[[ -x $OHREQ ]] || die "$OHREQ missing: run 'make build/ohreq' (or 'make bench') first"
command -v curl >/dev/null || die "curl not found"
command -v "${CC:-cc}" >/dev/null || die "no C compiler (${CC:-cc}) for benches/durable_floor.c"

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
# The upload check (warm-up only) has nginx buffer a whole 1 GiB request body in a temp
# file: in tmpfs (/dev/shm) when it has room, otherwise in the temp dir (1 GiB more on disk).
USE_SHM=0
shm_kib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
[[ -w /dev/shm && ${shm_kib:-0} -ge $((1200 * 1024)) ]] && USE_SHM=1
need_kib=$(((USE_SHM ? 3 : 4) * 1024 * 1024))
free_kib=$(df -Pk "$BASE" | awk 'NR == 2 { print $4 }')
((free_kib >= need_kib)) || die "$BASE has $((free_kib / 1024)) MiB free; need $((need_kib / 1024 / 1024)) GiB"

WORK=$(mktemp -d "$BASE/ohreq-bench.XXXXXX")
chmod 755 "$WORK"
NGINX_PID=
COUNT_TMP=
cleanup() {
    local rc=$?
    if [[ -n $NGINX_PID ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    [[ $COUNT_TMP == /dev/shm/* ]] && rm -rf "$COUNT_TMP"
    if [[ $KEEP == 1 ]]; then echo "bench: kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
((USE_SHM)) && COUNT_TMP=$(mktemp -d /dev/shm/ohreq-bench.XXXXXX) && chmod 755 "$COUNT_TMP"
[[ -n $COUNT_TMP ]] || { COUNT_TMP=$WORK/nginx/count-body; mkdir -p "$COUNT_TMP"; }

DATA=$WORK/data
OUT=$WORK/out
LOGS=$WORK/logs
mkdir -p "$DATA/small" "$LOGS" "$WORK/ohreq-tmp" "$WORK/nginx" "$WORK/small-out"
# ohreq keeps its throwaway task store under TMPDIR: inside $WORK, on the same disk.
export TMPDIR=$WORK/ohreq-tmp
FLOOR=$WORK/durable_floor
"${CC:-cc}" -std=c11 -O2 -pthread -o "$FLOOR" "$REPO/benches/durable_floor.c" || die "cannot build durable_floor"
FLOOR_THREADS=3 # ohreq's publisher threads (src/service/finalize.rs)
# The durable download floor needs the static libcurl (and nghttp2) the cargo build made.
DFLOOR=$WORK/download_floor
CURL_OUT=$(ls -td "$REPO"/target/release/build/curl-sys-*/out 2>/dev/null | while read -r d; do
    [[ -f $d/include/curl/curl.h && -f $d/build/libcurl.a ]] && { echo "$d"; break; }; done)
NGHTTP2_LIB=$(ls -td "$REPO"/target/release/build/libnghttp2-sys-*/out/i/lib 2>/dev/null | while read -r d; do
    [[ -f $d/libnghttp2.a ]] && { echo "$d"; break; }; done)
if [[ -n $CURL_OUT && -n $NGHTTP2_LIB ]] && "${CC:-cc}" -std=c11 -O2 -I"$CURL_OUT/include" -o "$DFLOOR" \
    "$REPO/benches/download_floor.c" "$CURL_OUT/build/libcurl.a" "$NGHTTP2_LIB/libnghttp2.a" \
    -lssl -lcrypto -lz -lpthread -ldl 2>"$WORK/download_floor.build.log"; then :; else
    log "download_floor not built (no static libcurl under target/release/build, or see $WORK/download_floor.build.log): its column is NA"
    DFLOOR=
fi

log "generating data in $WORK"
head -c "$BIG_BYTES" </dev/urandom >"$DATA/big.bin"
head -c "$MID_BYTES" </dev/urandom >"$DATA/mid.bin"
head -c $((SMALL_N * SMALL_BYTES)) </dev/urandom | (cd "$DATA/small" && split -b "$SMALL_BYTES" -d -a 4 - s)
echo ok >"$DATA/ready"
chmod -R a+rX "$DATA"
(( $(find "$DATA/small" -type f | wc -l) == SMALL_N )) || die "small file set incomplete"
sync # the sources' writeback must not run during the timed runs

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
    # Uploads get their own logs: method, URI, status, Content-Length, \$request_length.
    log_format upload '\$request_method \$uri \$status \$content_length \$request_length "\$http_expect"';
    server {
        listen 127.0.0.1:$port;
        root $DATA;
        # Upload sink for the timed runs: PUT and POST of any size. 'return' answers 200
        # at once and nginx then reads the rest of the body and throws it away (no temp file,
        # no disk). Discarded bytes are not counted in \$request_length, so the runs here are
        # checked with status, Content-Length and the loopback byte counter instead.
        location /sink/ {
            client_max_body_size 0;
            client_body_in_file_only off;
            access_log $LOGS/sink-access.log upload;
            return 200 "ok\n";
        }
        # Warm-up check only: nginx reads the whole body into a temp file before it proxies the
        # request on, so here \$request_length = request headers + every body byte received.
        location /count/ {
            client_max_body_size 0;
            client_body_temp_path $COUNT_TMP;
            access_log $LOGS/count-access.log upload;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:$port/null/;
        }
        location /null/ {
            client_max_body_size 0;
            access_log off;
            return 200 "ok\n";
        }
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
printf '%s\n' "${SMALL_URLS[@]}" >"$WORK/small-urls.txt"

# ---------------------------------------------------------------- helpers
now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

fresh_out() { OUT=$WORK/out; rm -rf "$OUT"; mkdir -p "$OUT"; sync; }

# Each small-file run writes into a new directory, and none is deleted before the end.
# On ext4 without a journal (as on the VMs here) every inode allocation skips the inodes
# freed in the last minutes, one lookup each: right after 1000 files are deleted, creating
# 1000 more costs either tool 0.2-0.5 s on top, which buried the difference between them.
SMALL_SEQ=0
fresh_small() { # sets OUT to an empty directory of its own
    SMALL_SEQ=$((SMALL_SEQ + 1))
    OUT=$WORK/small-out/$SMALL_SEQ
    mkdir -p "$OUT"
    sync
}

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
    fresh_small
    local t0 t1
    t0=$(now)
    run_logged small-ohreq "$OHREQ" get --quiet --allow-http --parallel "$PAR" -d "$OUT" "${SMALL_URLS[@]}"
    t1=$(now)
    T=$(sub "$t1" "$t0")
    check_small ohreq "$1"
}
run_small_curl() {
    fresh_small
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
run_small_floor() { # the disk's own cost of ohreq's durability for these files (no network)
    fresh_small
    T=$("$FLOOR" "$FLOOR_THREADS" "$OUT" "$DATA"/small/s*) || die "durable_floor failed"
    check_small floor 0
}
run_small_dfloor() { # the least any durable download of these files costs (libcurl + syncs)
    [[ -n $DFLOOR ]] || { T=NA; return; }
    fresh_small
    local t0 t1
    t0=$(now)
    "$DFLOOR" "$FLOOR_THREADS" "$OUT" "$WORK/small-urls.txt" >/dev/null || die "download_floor failed"
    t1=$(now)
    T=$(sub "$t1" "$t0")
    check_small dfloor "$1"
}

# Uploads: "put" sends big.bin as the raw body of one PUT, "post" sends mid.bin as one
# multipart/form-data POST. Both go to the discarding /sink/ (timed runs) or to /count/
# (warm-up check). Every run gets its own URI, so its access-log line can be found.
UP_SEQ=0
LO_RX=/sys/class/net/lo/statistics/rx_bytes
lo_rx() { if [[ -r $LO_RX ]]; then cat "$LO_RX"; else echo -1; fi; }
upload_cmd() { # tool case url: sets CMD
    case $1/$2 in
    ohreq/put) CMD=("$OHREQ" upload --quiet --allow-http -X PUT -F "file=@$DATA/big.bin" "$3") ;;
    curl/put) CMD=(curl -sS --fail --noproxy '*' -T "$DATA/big.bin" -o /dev/null -w '%{http_code} %{size_upload}\n' "$3") ;;
    ohreq/post) CMD=("$OHREQ" upload --quiet --allow-http -F "file=@$DATA/mid.bin" "$3") ;;
    curl/post) CMD=(curl -sS --fail --noproxy '*' -F "file=@$DATA/mid.bin" -o /dev/null -w '%{http_code} %{size_upload}\n' "$3") ;;
    *) die "upload_cmd $*" ;;
    esac
}
await_line() { # log uri: prints the log's line for uri; nginx writes it once the body is read
    local line
    for _ in $(seq 1000); do
        line=$(grep -F " $2 " "$1" 2>/dev/null | tail -1 || true)
        [[ -n $line ]] && { echo "$line"; return 0; }
        sleep 0.01
    done
    return 1
}
check_upload() { # tool case loc uri lo_delta
    local tool=$1 kase=$2 loc=$3 uri=$4 lo=$5 line m u st cl rl want_m out
    line=$(await_line "$LOGS/$loc-access.log" "$uri") || die "$tool $kase: no $loc access-log line for $uri"
    read -r m u st cl rl _ <<<"$line"
    if [[ $kase == put ]]; then want_m=PUT; else want_m=POST; fi
    [[ $m == "$want_m" && $st == 200 ]] || die "$tool $kase: nginx logged '$line', want $want_m ... 200"
    # Content-Length: the file itself (PUT); the file plus the multipart framing (POST).
    if [[ $kase == put ]]; then
        ((cl == BIG_BYTES)) || die "$tool put: Content-Length $cl, want $BIG_BYTES"
    else
        ((cl > MID_BYTES && cl < MID_BYTES + 4096)) || die "$tool post: Content-Length $cl for a $MID_BYTES-byte file"
    fi
    # All of it crossed loopback during the run (the counter only adds other traffic).
    ((lo < 0 || lo >= cl)) || die "$tool $kase: only $lo bytes crossed loopback, body is $cl"
    # /count/ read the whole body itself: headers + body, so more than Content-Length by less than 4 KiB.
    if [[ $loc == count ]]; then
        ((rl > cl && rl < cl + 4096)) || die "$tool $kase: nginx read $rl request bytes, body alone is $cl"
    fi
    out=$(cat "$LOGS/$kase-$tool.log")
    if [[ $tool == ohreq ]]; then
        [[ $out == ok ]] || die "ohreq $kase: printed '$out', want the sink's 'ok'"
    else
        [[ $out == "200 $cl" ]] || die "curl $kase: status/bytes sent '$out', want '200 $cl'"
    fi
}
run_upload() { # tool case [loc]: sets T and, for put, RSS
    local tool=$1 kase=$2 loc=${3:-sink} uri t0 t1 lo0 lo1
    UP_SEQ=$((UP_SEQ + 1))
    uri=/$loc/$kase-$tool-$UP_SEQ
    upload_cmd "$tool" "$kase" "$BASE_URL$uri"
    sync
    lo0=$(lo_rx)
    t0=$(now)
    if [[ $kase == put ]]; then
        run_logged "$kase-$tool" /usr/bin/time -f %M -o "$LOGS/rss" "${CMD[@]}"
    else
        run_logged "$kase-$tool" "${CMD[@]}"
    fi
    t1=$(now)
    lo1=$(lo_rx)
    T=$(sub "$t1" "$t0")
    [[ $kase == put ]] && RSS=$(tail -1 "$LOGS/rss")
    if ((lo0 < 0)); then check_upload "$tool" "$kase" "$loc" "$uri" -1
    else check_upload "$tool" "$kase" "$loc" "$uri" $((lo1 - lo0)); fi
}
run_post() { # tool: POST_REPS timed uploads of mid.bin; T = their mean time
    local sum=0 k
    for ((k = 0; k < POST_REPS; k++)); do
        run_upload "$1" post
        sum=$(awk -v a="$sum" -v b="$T" 'BEGIN { printf "%.6f", a + b }')
    done
    T=$(awk -v a="$sum" -v n="$POST_REPS" 'BEGIN { printf "%.4f", a / n }')
}

# ---------------------------------------------------------------- 3. rounds
log "warm-up (untimed), with a full-body check of each upload through /count/"
run_big_ohreq 1; run_big_curl 1; run_small_ohreq 1; run_small_curl 1; run_small_dfloor 1
for kase in put post; do
    for tool in ohreq curl; do run_upload $tool $kase count; run_upload $tool $kase; done
done

BO=() BC=() BR=() RSS_O=() RSS_C=() SO=() SC=() SCS=() SR=() SRS=() FL=() FLR=() DFL=() DFLR=()
UO=() UC=() UR=() RSS_UO=() RSS_UC=() MO=() MC=() MR=()
machine_load() { # load average, and the share of time tasks waited on I/O (PSI, when there)
    local io=
    [[ -r /proc/pressure/io ]] && io=", io-wait $(awk '/^some/ { sub("avg10=", "", $2); print $2 }' /proc/pressure/io)%"
    echo "$(cut -d' ' -f1-3 /proc/loadavg)$io"
}
# How long this directory's filesystem takes to create 1000 empty files (kept until the end).
# Around 10-30 ms normally; many times that when many files were deleted here in the last
# minutes (an earlier bench run's cleanup, say), which inflates both tools' small-file times.
create_probe() {
    local d=$WORK/create-probe t0 t1
    mkdir -p "$d"
    t0=$(now)
    (cd "$d" && for i in $(seq 1000); do : >"p$i"; done)
    t1=$(now)
    sub "$t1" "$t0"
}
CREATE_1000=$(create_probe)
if awk -v t="$CREATE_1000" 'BEGIN { exit !(t > 0.1) }'; then
    echo "bench: WARNING: creating 1000 files took ${CREATE_1000} s here (normally < 0.05 s):" \
        "files deleted in the last minutes slow every new file down; the small-file times of" \
        "both tools are inflated. Wait a few minutes and run again for clean figures." >&2
fi
LOAD0=$(machine_load)
log "$ROUNDS paired rounds; times in seconds (POST: mean of $POST_REPS uploads), ratio = ohreq / curl (machine load: $LOAD0)"
# shellcheck disable=SC2059
ROW='%-5s %-6s | %8s %10s %6s | %8s %8s %10s %6s %6s %6s %6s | %8s %8s %6s | %8s %8s %6s\n'
printf "$ROW" round first \
    "1G ohreq" "1G curl+s" ratio "sm ohreq" "sm curl" "sm curl+s" r r+s floor dfloor \
    "PUT ohrq" "PUT curl" r "POST ohr" "POST crl" r
for ((r = 1; r <= ROUNDS; r++)); do
    do_cmp=$((r == 1 ? 1 : 0)) # compare contents in the first timed round (and the warm-up)
    if ((r % 2)); then first=ohreq; else first=curl; fi
    if [[ $first == ohreq ]]; then
        run_big_ohreq $do_cmp; bo=$T; rso=$RSS
        run_big_curl $do_cmp; bc=$T; rsc=$RSS
        run_small_ohreq $do_cmp; so=$T
        run_small_curl $do_cmp; sc=$T; scs=$T_SYNC
        run_small_floor; fl=$T
        run_small_dfloor $do_cmp; dfl=$T
        rm -rf "$WORK/out" # the 1 GiB outputs; the small ones stay until the end
        run_upload ohreq put; uo=$T; rsuo=$RSS
        run_upload curl put; uc=$T; rsuc=$RSS
        run_post ohreq; mo=$T
        run_post curl; mc=$T
    else
        run_big_curl $do_cmp; bc=$T; rsc=$RSS
        run_big_ohreq $do_cmp; bo=$T; rso=$RSS
        run_small_curl $do_cmp; sc=$T; scs=$T_SYNC
        run_small_dfloor $do_cmp; dfl=$T
        run_small_ohreq $do_cmp; so=$T
        run_small_floor; fl=$T
        rm -rf "$WORK/out" # the 1 GiB outputs; the small ones stay until the end
        run_upload curl put; uc=$T; rsuc=$RSS
        run_upload ohreq put; uo=$T; rsuo=$RSS
        run_post curl; mc=$T
        run_post ohreq; mo=$T
    fi
    br=$(div "$bo" "$bc"); sr=$(div "$so" "$sc"); srs=$(div "$so" "$scs")
    ur=$(div "$uo" "$uc"); mr=$(awk -v a="$mo" -v b="$mc" 'BEGIN { printf "%.3f", a / b }')
    BO+=("$bo") BC+=("$bc") BR+=("$br") RSS_O+=("$rso") RSS_C+=("$rsc")
    SO+=("$so") SC+=("$sc") SCS+=("$scs") SR+=("$sr") SRS+=("$srs") FL+=("$fl") FLR+=("$(div "$fl" "$sc")")
    [[ $dfl == NA ]] || DFL+=("$dfl") DFLR+=("$(div "$dfl" "$sc")")
    UO+=("$uo") UC+=("$uc") UR+=("$ur") RSS_UO+=("$rsuo") RSS_UC+=("$rsuc")
    MO+=("$mo") MC+=("$mc") MR+=("$mr")
    # shellcheck disable=SC2059
    printf "$ROW" "$r" "$first" \
        "$bo" "$bc" "$br" "$so" "$sc" "$scs" "$sr" "$srs" "$fl" "$dfl" "$uo" "$uc" "$ur" "$mo" "$mc" "$mr"
done

# shellcheck disable=SC2059
printf "$ROW" median "" \
    "$(median "${BO[@]}")" "$(median "${BC[@]}")" "$(median "${BR[@]}")" \
    "$(median "${SO[@]}")" "$(median "${SC[@]}")" "$(median "${SCS[@]}")" \
    "$(median "${SR[@]}")" "$(median "${SRS[@]}")" "$(median "${FL[@]}")" \
    "$(median "${UO[@]}")" "$(median "${UC[@]}")" "$(median "${UR[@]}")" \
    "$(median "${MO[@]}")" "$(median "${MC[@]}")" "$(median "${MR[@]}")"
mib_list() { for k in "$@"; do printf '%s ' "$(mib "$k")"; done; }
echo "peak RSS per round (MiB), get 1 GiB: ohreq $(mib_list "${RSS_O[@]}")| curl $(mib_list "${RSS_C[@]}")"
echo "peak RSS per round (MiB), PUT 1 GiB: ohreq $(mib_list "${RSS_UO[@]}")| curl $(mib_list "${RSS_UC[@]}")"

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
    if command -v strace >/dev/null; then
        for kase in put post; do
            upload_cmd ohreq $kase "$BASE_URL/sink/profile-$kase"
            log "strace -c -f: ohreq upload $kase"
            strace -c -f -o "$LOGS/strace-$kase" "${CMD[@]}" >/dev/null
            head -15 "$LOGS/strace-$kase"
        done
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
        for kase in put post; do
            upload_cmd ohreq $kase "$BASE_URL/sink/profile-$kase"
            log "perf stat: ohreq upload $kase"
            perf stat -o "$LOGS/perf-$kase" -e task-clock,context-switches,page-faults -- \
                "${CMD[@]}" >/dev/null || true
            grep -Ev '^\s*$|^#|counter stats' "$LOGS/perf-$kase" || true
        done
    fi
    rm -rf "$OUT"
fi

# ---------------------------------------------------------------- 4. summary
rss_o=$(mib "$(maxof "${RSS_O[@]}")"); rss_c=$(mib "$(maxof "${RSS_C[@]}")")
rss_uo=$(mib "$(maxof "${RSS_UO[@]}")"); rss_uc=$(mib "$(maxof "${RSS_UC[@]}")")
summary=$(
    echo "== summary (median of $ROUNDS rounds, ohreq / curl, same loopback nginx)"
    printf '%-46s %5sx   (target <= 0.95)\n' "1 GiB download to disk (curl -o + sync):" "$(median "${BR[@]}")"
    printf '%-46s %5sx   (target <= 0.80)\n' "$SMALL_N x 16 KiB, $PAR parallel (curl --parallel):" "$(median "${SR[@]}")"
    printf '%-46s %5sx\n' "$SMALL_N x 16 KiB, $PAR parallel (curl + sync):" "$(median "${SRS[@]}")"
    printf '%-46s %5sx   (no network: the disk alone)\n' "  durable floor ($FLOOR_THREADS writers) / curl --parallel:" "$(median "${FLR[@]}")"
    if ((${#DFLR[@]})); then
        printf '%-46s %5sx   (libcurl + the same syncs, no bookkeeping)\n' "  download floor ($FLOOR_THREADS writers) / curl --parallel:" "$(median "${DFLR[@]}")"
    fi
    printf '%-46s %5sx   (target <= 1.05)\n' "1 GiB PUT upload (curl -T):" "$(median "${UR[@]}")"
    printf '%-46s %5sx   (target <= 1.05)\n' "64 MiB multipart POST upload (curl -F):" "$(median "${MR[@]}")"
    echo "peak RSS ohreq get 1 GiB: $rss_o MiB (target < 32 MiB); curl: $rss_c MiB"
    echo "peak RSS ohreq upload PUT 1 GiB: $rss_uo MiB (target < 32 MiB); curl: $rss_uc MiB"
    echo "medians (s): 1 GiB ohreq $(median "${BO[@]}") curl+sync $(median "${BC[@]}");" \
        "small ohreq $(median "${SO[@]}") curl $(median "${SC[@]}") curl+sync $(median "${SCS[@]}") durable floor $(median "${FL[@]}")" \
        "download floor $( ((${#DFL[@]})) && median "${DFL[@]}" || echo NA)"
    echo "medians (s): PUT 1 GiB ohreq $(median "${UO[@]}") curl $(median "${UC[@]}");" \
        "POST 64 MiB (mean of $POST_REPS per round) ohreq $(median "${MO[@]}") curl $(median "${MC[@]}")"
    echo "machine load before / after the rounds (loadavg 1/5/15 min, io-wait avg10): $LOAD0 / $LOAD1"
    echo "creating 1000 empty files in the out dir's filesystem took $CREATE_1000 s before the rounds (normally < 0.05)"
    echo "($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r), $(curl --version | head -1 | cut -d' ' -f1-2), nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), out dir fs $(df -PT "$WORK" | awk 'NR == 2 { print $2 }'))"
)
echo
echo "$summary"
echo "$summary" >"$RESULTS"
