#!/bin/sh
# make demo: starts the loopback testserver, then shows build/ohreq downloading several files
# at once (one throttled, so its progress bar moves), resuming a killed run from its --state
# dir, uploading, and failing clearly on a 404 and on a redirect loop.
set -u
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/ohreq-demo-XXXXXX")
mkdir -p "$work/root"
target/release/testserver --root "$work/root" --port-file "$work/ports" --cert-dir "$work/certs" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT INT TERM
for _ in $(seq 1 100); do [ -s "$work/ports" ] && break; sleep 0.1; done
http=$(sed 's/.*http=\([0-9]*\).*/\1/' "$work/ports")
https=$(sed 's/.*https=\([0-9]*\).*/\1/' "$work/ports")
head -c 64000000 /dev/urandom >"$work/root/video.bin"
head -c 3000000 /dev/urandom >"$work/root/photo.jpg"
echo "hello from ohreq" >"$work/root/hello.txt"

echo "== three downloads at once over HTTPS (one throttled to 1.5 MB/s)"
echo "\$ ohreq get --cacert ca.pem -d out https://127.0.0.1:$https/files/video.bin ..."
build/ohreq get --cacert "$work/certs/ca.pem" -d "$work/out" \
  "https://127.0.0.1:$https/files/video.bin" \
  "https://127.0.0.1:$https/files/photo.jpg?rate=1500000" \
  "https://127.0.0.1:$https/files/hello.txt"
echo "exit code $?"
for f in video.bin photo.jpg hello.txt; do
  cmp -s "$work/root/$f" "$work/out/$f" && echo "  $f: identical to the server's copy" || echo "  $f: DIFFERENT"
done

echo
echo "== a download killed half-way, then finished by a second run with the same --state"
build/ohreq get --quiet --allow-http --state "$work/state" -d "$work/resume" \
  "http://127.0.0.1:$http/files/video.bin?rate=16000000" &
cli=$!
sleep 2
kill -9 $cli 2>/dev/null; wait $cli 2>/dev/null
part=$(stat -c %s "$work/resume/video.bin?rate=16000000.ohreq-part" 2>/dev/null || stat -c %s "$work/resume/"*.ohreq-part 2>/dev/null || echo 0)
echo "  killed with SIGKILL after ~2 s; ${part} bytes were on disk"
build/ohreq get --allow-http --state "$work/state" -d "$work/resume" "http://127.0.0.1:$http/files/video.bin?rate=16000000"
echo "exit code $?"
cmp -s "$work/root/video.bin" "$work/resume/video.bin" && echo "  video.bin: identical after the resume" || echo "  video.bin: DIFFERENT"

echo
echo "== an upload: multipart POST of two files and a field (the server echoes what it parsed)"
echo "\$ ohreq upload -F 'file=@photo.jpg' -F 'note=@hello.txt;filename=greeting.txt' -f album=holiday https://127.0.0.1:$https/echo"
build/ohreq upload --quiet --cacert "$work/certs/ca.pem" -F "file=@$work/out/photo.jpg" \
  -F "note=@$work/out/hello.txt;filename=greeting.txt" -f album=holiday "https://127.0.0.1:$https/echo" >"$work/reply"
echo "exit code $?; the server's reply ends with:"
tail -2 "$work/reply"

echo
echo "== failures say what went wrong"
build/ohreq get --allow-http -d "$work/fail" "http://127.0.0.1:$http/files/missing.bin" "http://127.0.0.1:$http/loop"
echo "exit code $? (non-zero: not every URL succeeded)"
