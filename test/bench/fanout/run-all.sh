#!/bin/sh
# Runs the fan-out benchmark matrix recorded in docs/fanout-bench.md:
# babelcast (listener WebSocket and WAV; Opus over the WebSocket and the
# .ogg stream) and, if icecast2 is installed, Icecast 2 under the same HTTP
# client load (a PCM mount, and an Ogg/Opus mount for the Opus rows).
#   sh test/bench/fanout/run-all.sh [duration] [counts]
set -eu
dur=${1:-20s}
counts=${2:-100,1000,5000}
cd "$(dirname "$0")/../../.."
bin=$(mktemp -d)/fanbench
go build -o "$bin" ./test/bench/fanout
icecast() { # icecast TRANSPORT FRAME: the same load on an Icecast mount
  if command -v icecast2 >/dev/null; then
    pid=$(sh test/bench/fanout/icecast.sh)
    "$bin" -listeners "$counts" -duration "$dur" -frame "$2" -transport "$1" -pid "$pid" \
      -target http://127.0.0.1:8765/bench -source-put http://source:benchpw@127.0.0.1:8765/bench || true
    kill "$pid"
    sleep 1
  fi
}
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for frame in 100ms 20ms; do
  "$bin" -listeners "$counts" -duration "$dur" -frame "$frame" -transport ws
  "$bin" -listeners "$counts" -duration "$dur" -frame "$frame" -transport wav
  icecast stream "$frame"
  echo "# load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
done
# Opus: 100 ms ticks (the program's), a shaped source (see opus.go).
"$bin" -listeners "$counts" -duration "$dur" -frame 100ms -transport opus
"$bin" -listeners "$counts" -duration "$dur" -frame 100ms -transport ogg
icecast ogg 100ms
echo "# load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
