#!/bin/sh
# Runs the fan-out benchmark matrix recorded in docs/fanout-bench.md:
# babelcast (listener WebSocket and WAV) and, if icecast2 is installed,
# Icecast 2 under the same HTTP client load.
#   sh test/bench/fanout/run-all.sh [duration] [counts]
set -eu
dur=${1:-20s}
counts=${2:-100,1000,5000}
cd "$(dirname "$0")/../../.."
bin=$(mktemp -d)/fanbench
go build -o "$bin" ./test/bench/fanout
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for frame in 100ms 20ms; do
  "$bin" -listeners "$counts" -duration "$dur" -frame "$frame" -transport ws
  "$bin" -listeners "$counts" -duration "$dur" -frame "$frame" -transport wav
  if command -v icecast2 >/dev/null; then
    pid=$(sh test/bench/fanout/icecast.sh)
    "$bin" -listeners "$counts" -duration "$dur" -frame "$frame" -pid "$pid" \
      -target http://127.0.0.1:8765/bench -source-put http://source:benchpw@127.0.0.1:8765/bench || true
    kill "$pid"
    sleep 1
  fi
  echo "# load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
done
