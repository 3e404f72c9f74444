#!/usr/bin/env bash
# A CI smoke test of iothub-tut: a local IoT Hub in the background on free ports, a device, telemetry
# sent and read back through the hub's Event Hub-compatible endpoint, the hub stopped. Every wait is
# bounded; any failure exits non-zero (and prints the hub's log). Nothing is left behind.
#
#   examples/ci-smoke.sh                          from a clone, after npm ci (runs bin/iothub-tut)
#   IOTHUB_TUT=iothub-tut examples/ci-smoke.sh    with the package installed (npm i -g iothub-tut)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${IOTHUB_TUT:-}" ]]; then read -ra cli <<<"$IOTHUB_TUT"; else cli=(node "$here/../bin/iothub-tut"); fi
tut() { "${cli[@]}" "$@"; }

# A scratch home: this job's hub (data dir, profile, log) and no other. Commands find the hub through it.
export IOTHUB_TUT_HOME="$(mktemp -d)"
work="$IOTHUB_TUT_HOME/smoke"
mkdir "$work"
hub_running=false

fail() {
  echo "ci-smoke: $*" >&2
  exit 1
}

cleanup() {
  local code=$?
  if $hub_running; then
    if ((code != 0)) && [[ -f "$IOTHUB_TUT_HOME/hub/hub.log" ]]; then
      echo "ci-smoke: the hub's log:" >&2
      cat "$IOTHUB_TUT_HOME/hub/hub.log" >&2
    fi
    tut hub stop --timeout 30 >/dev/null || true
  fi
  rm -rf "$IOTHUB_TUT_HOME"
  ((code == 0)) && echo "ci-smoke: passed" || echo "ci-smoke: FAILED (exit $code)" >&2
  exit "$code"
}
trap cleanup EXIT

echo "--- start a hub in the background; it returns once the hub accepts connections"
tut hub start --detach --port 0 --amqp-port 0 --json >"$work/started.json"
hub_running=true
grep -q '"event":"started"' "$work/started.json" || fail "no started event: $(cat "$work/started.json")"

echo "--- create a device"
tut create-device --device-id ci-device --json >"$work/device.json"
grep -q '"deviceId":"ci-device"' "$work/device.json" || fail "create-device printed: $(cat "$work/device.json")"

echo "--- send 3 messages as that device; each is confirmed once the hub has stored it"
tut send-telemetry --device-id ci-device --count 3 --interval 0 --json >"$work/sent.jsonl"
[[ $(grep -c '"event":"confirmed"' "$work/sent.jsonl") -eq 3 ]] || fail "sent: $(cat "$work/sent.jsonl")"

echo "--- read them back from the Event Hub-compatible endpoint (--from-start: none is missed; exit 5 after 60 s)"
tut monitor-events --device-id ci-device --from-start --count 3 --timeout 60 --json >"$work/events.jsonl"
[[ $(grep -c '"event":"message"' "$work/events.jsonl") -eq 3 ]] || fail "received: $(cat "$work/events.jsonl")"

echo "--- status, then stop (it waits until the hub has stopped)"
tut hub status --json >"$work/status.json"
grep -q '"uptimeSeconds"' "$work/status.json" || fail "hub status printed: $(cat "$work/status.json")"
tut hub stop --timeout 30 --json >"$work/stopped.json"
hub_running=false
grep -q '"event":"stopped"' "$work/stopped.json" || fail "hub stop printed: $(cat "$work/stopped.json")"
code=0
tut hub status >/dev/null 2>&1 || code=$?
[[ $code -eq 8 ]] || fail "hub status after the stop exited $code, not 8 (no hub running)"
