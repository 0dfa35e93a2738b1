#!/usr/bin/env bash
# A real local S3 for tests: one-node Ceph (mon + memstore OSD + RADOS Gateway) on 127.0.0.1.
#
#   scripts/ceph-rgw.sh install          apt-get the Debian packages (root; idempotent)
#   scripts/ceph-rgw.sh start  [DIR]     start mon, osd, radosgw; create the test user; write DIR/env, DIR/ceph.json
#   scripts/ceph-rgw.sh stop   [DIR]     stop by pid files and remove DIR
#   scripts/ceph-rgw.sh status [DIR]
#
# DIR defaults to .local/ceph under the repo. Environment: CEPH_RGW_PORT (7480),
# CEPH_S3_ACCESS_KEY_ID, CEPH_S3_SECRET_ACCESS_KEY (fixed local test keys by default),
# CEPH_START_TIMEOUT (seconds, 90).
# Facts behind the settings: docs/local-s3.md.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${CEPH_RGW_PORT:-7480}"
ACCESS_KEY="${CEPH_S3_ACCESS_KEY_ID:-iva-bridge-local}"
# Not a secret: a fixed key for a throw-away gateway bound to 127.0.0.1.
SECRET_KEY="${CEPH_S3_SECRET_ACCESS_KEY:-iva-bridge-local-secret-0123456789abcdef}"
REGION="us-east-1" # RGW rejects the LocationConstraint any other region sends
START_TIMEOUT="${CEPH_START_TIMEOUT:-90}"
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
BINARIES=(ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool)
RGW_POOLS=(.rgw.root default.rgw.control default.rgw.meta default.rgw.log
  default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec)

T0=$(date +%s%N)
# Prefixed with seconds since the script started, so slow steps show in CI logs.
log() { printf '[ceph-rgw +%ss] %s\n' "$(elapsed)" "$*" >&2; }
elapsed() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
die() { printf '[ceph-rgw] error: %s\n' "$*" >&2; exit 1; }

resolve_dir() {
  local dir="${1:-$REPO_ROOT/.local/ceph}"
  mkdir -p "$dir"
  (cd "$dir" && pwd)
}

missing_binaries() {
  local b missing=()
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
  echo "${missing[*]:-}"
}

cmd_install() {
  local missing
  missing="$(missing_binaries)"
  if [[ -z "$missing" ]]; then
    log "already installed ($(ceph-mon --version 2>/dev/null | awk '{print $3}'))"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "missing: $missing. Installing needs root: sudo bash $0 install (or apt-get install ${PACKAGES[*]})"
  command -v apt-get >/dev/null 2>&1 || die "missing: $missing, and no apt-get here (Debian/Ubuntu only)"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the index only when it does not know the packages (fresh image, stale lists).
  # (Captured first: grep -q closing the pipe early would fail the pipeline under pipefail.)
  local policy
  policy="$(apt-cache policy radosgw 2>/dev/null || true)"
  if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
    log "apt-get update"
    apt-get update -qq
  fi
  log "apt-get install ${PACKAGES[*]}"
  if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
    # Lists that name a version the mirror no longer serves: refresh once and retry.
    log "install failed; apt-get update and retry"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  fi
  missing="$(missing_binaries)"
  [[ -z "$missing" ]] || die "still missing after install: $missing"
  log "installed ($(ceph-mon --version 2>/dev/null | awk '{print $3}'))"
}

pid_alive() { # pidfile
  [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

port_busy() {
  # bash's /dev/tcp: a successful connect means someone listens.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_conf() { # dir
  local d="$1"
  cat >"$d/ceph.conf" <<EOF
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# With auth none, radosgw waits 300 s on the mon unless both modes allow crc.
ms_mon_client_mode = crc secure
ms_client_mode = crc secure
run_dir = $d/run
# \$pid: clients running side by side would otherwise fight over client.admin.asok.
admin_socket = $d/run/\$name.\$pid.asok
pid_file = $d/run/\$name.pid
log_file = $d/log/\$name.log
mon_cluster_log_file = $d/log/cluster.log
mon_data = $d/mon/\$cluster-\$id
osd_data = $d/osd/\$cluster-\$id
keyring = $d/keyring
# The mon batches map changes for 1 s by default: each pool command would wait for it.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
osd_objectstore = memstore
memstore_device_bytes = 1073741824
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_autoscale_mode = off
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_dns_name = 127.0.0.1
rgw_data = $d/rgw
rgw_enable_usage_log = false
rgw_thread_pool_size = 64
EOF
}

s3_answers() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/" 2>/dev/null || true)"
  [[ "$code" =~ ^[2-4][0-9][0-9]$ ]]
}

write_outputs() { # dir
  local d="$1" endpoint="http://127.0.0.1:$PORT"
  umask 077
  cat >"$d/env" <<EOF
export CEPH_S3_ENDPOINT=$endpoint
export CEPH_S3_ACCESS_KEY_ID=$ACCESS_KEY
export CEPH_S3_SECRET_ACCESS_KEY=$SECRET_KEY
export CEPH_S3_REGION=$REGION
EOF
  cat >"$d/ceph.json" <<EOF
{
  "endpoint": "$endpoint",
  "region": "$REGION",
  "accessKeyId": "$ACCESS_KEY",
  "secretAccessKey": "$SECRET_KEY"
}
EOF
  umask 022
}

fail_with_logs() { # dir message
  local d="$1" f
  printf '[ceph-rgw] error: %s\n' "$2" >&2
  for f in "$d"/log/*.log; do
    [[ -f "$f" ]] || continue
    printf -- '--- tail %s ---\n' "$f" >&2
    tail -n 25 "$f" >&2
  done
  # No half-started daemons left behind; the logs stay for a look.
  stop_daemons "$d"
  exit 1
}

ceph_python() { # the interpreter the ceph CLI runs on: it has the rados module (pyenv etc. may not)
  local shebang words
  shebang="$(head -n 1 "$(command -v ceph)")"
  shebang="${shebang#\#!}"
  read -r -a words <<<"$shebang"
  if [[ "${words[0]:-}" == */env ]]; then echo "${words[1]:-python3}"; else echo "${words[0]:-python3}"; fi
}

cmd_start() {
  local d started now
  d="$(resolve_dir "${1:-}")"
  started=$(date +%s%N)
  if pid_alive "$d/run/client.rgw.pid" && pid_alive "$d/run/osd.0.pid" && pid_alive "$d/run/mon.a.pid"; then
    # Read the port back from the running config so a different CEPH_RGW_PORT does not lie.
    PORT="$(sed -n 's/^rgw_frontends = .*endpoint=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/ceph.conf")"
    [[ -s "$d/env" ]] || write_outputs "$d"
    log "already running"
    echo "http://127.0.0.1:$PORT"
    return 0
  fi
  [[ -z "$(missing_binaries)" ]] || die "Ceph is not installed: bash $0 install"
  [[ "$(id -u)" == 0 ]] || log "warning: not root; Debian's ceph daemons usually need root here"
  # A half-started cluster from an earlier run: clear it first.
  stop_daemons "$d"
  rm -rf "${d:?}"/{mon,osd,run,log,rgw,ceph.conf,env,ceph.json,keyring,monmap}
  port_busy "$PORT" && die "port $PORT is busy (set CEPH_RGW_PORT to a free port)"

  # Mon ports are derived from the RGW port so two clusters can coexist.
  MON_V2_PORT="${CEPH_MON_PORT:-$((PORT + 10000))}"
  MON_V1_PORT="$((MON_V2_PORT + 1))"
  port_busy "$MON_V2_PORT" && die "mon port $MON_V2_PORT is busy (set CEPH_MON_PORT)"
  port_busy "$MON_V1_PORT" && die "mon port $MON_V1_PORT is busy (set CEPH_MON_PORT)"
  FSID="$(cat /proc/sys/kernel/random/uuid)"
  mkdir -p "$d"/{mon,osd/ceph-0,run,log,rgw}
  write_conf "$d"
  local conf=(-c "$d/ceph.conf")

  log "mon"
  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$d/monmap" >/dev/null
  ceph-mon "${conf[@]}" --mkfs -i a --monmap "$d/monmap" >/dev/null 2>&1 \
    || fail_with_logs "$d" "ceph-mon --mkfs failed"
  ceph-mon "${conf[@]}" -i a || fail_with_logs "$d" "ceph-mon did not start"

  log "osd (memstore)"
  local osd_uuid osd_id
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  osd_id="$(timeout 30 ceph "${conf[@]}" osd new "$osd_uuid" 2>/dev/null)" \
    || fail_with_logs "$d" "ceph osd new failed (mon not answering?)"
  [[ "$osd_id" == 0 ]] || fail_with_logs "$d" "unexpected osd id '$osd_id'"
  ceph-osd "${conf[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 \
    || fail_with_logs "$d" "ceph-osd --mkfs failed"
  # (It chats on stderr about interfaces; its log file has everything.)
  ceph-osd "${conf[@]}" -i 0 2>>"$d/log/osd.0.stderr" || fail_with_logs "$d" "ceph-osd did not start"

  log "rgw pools"
  # One python process for all 14 mon commands: each `ceph` CLI call costs ~0.3 s of CPU.
  # (RGW would create the pools itself, one by one, twice as slowly.)
  "$(ceph_python)" - "$d/ceph.conf" "${RGW_POOLS[@]}" >"$d/log/pools.out" 2>&1 <<'PY' \
    || fail_with_logs "$d" "creating the rgw pools failed: $(tail -n 3 "$d/log/pools.out")"
import json, sys
import rados
conf, pools = sys.argv[1], sys.argv[2:]
cluster = rados.Rados(conffile=conf)
cluster.connect(timeout=30)
for cmd in [{"prefix": "osd pool create", "pool": p, "pg_num": 8, "pgp_num": 8} for p in pools] + \
           [{"prefix": "osd pool application enable", "pool": p, "app": "rgw"} for p in pools]:
    rc, _, err = cluster.mon_command(json.dumps(cmd), b"", timeout=30)
    if rc != 0:
        sys.exit(f"{cmd['prefix']} {cmd['pool']}: {rc} {err}")
cluster.shutdown()
PY

  log "radosgw on 127.0.0.1:$PORT"
  radosgw "${conf[@]}" -n client.rgw || fail_with_logs "$d" "radosgw did not start"

  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  until s3_answers; do
    if (( $(date +%s) >= deadline )); then
      fail_with_logs "$d" "S3 endpoint http://127.0.0.1:$PORT did not answer within ${START_TIMEOUT}s"
    fi
    pid_alive "$d/run/client.rgw.pid" || [[ ! -s "$d/run/client.rgw.pid" ]] \
      || fail_with_logs "$d" "radosgw exited"
    sleep 0.2
  done

  log "user $ACCESS_KEY"
  timeout 60 radosgw-admin "${conf[@]}" -n client.rgw user create --uid iva-bridge-local \
    --display-name "iva-bridge local tests" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
    >/dev/null 2>"$d/log/user-create.log" || fail_with_logs "$d" "radosgw-admin user create failed"

  write_outputs "$d"
  now=$(date +%s%N)
  log "ready in $(( (now - started) / 1000000 )) ms; env: $d/env"
  echo "http://127.0.0.1:$PORT"
}

stop_daemons() { # dir — one at a time, clients first: an OSD whose mon is gone waits 5 s to say goodbye
  local d="$1"
  term_and_wait "$d/run/client.rgw.pid"
  term_and_wait "$d/run/osd.0.pid"
  term_and_wait "$d/run/mon.a.pid"
}

term_and_wait() { # pidfile... — SIGTERM, wait up to 10 s, then SIGKILL leftovers
  local f pid pids=() i alive
  for f in "$@"; do
    if pid_alive "$f"; then
      pid="$(cat "$f")"
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  (( ${#pids[@]} )) || return 0
  for i in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do if kill -0 "$pid" 2>/dev/null; then alive=1; fi; done
    (( alive )) || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

cmd_stop() {
  local d
  d="$(resolve_dir "${1:-}")"
  stop_daemons "$d"
  # Only remove what this script creates, so a mistyped DIR cannot wipe something else.
  rm -rf "${d:?}"/{mon,osd,run,log,rgw,ceph.conf,env,ceph.json,keyring,monmap}
  rmdir "$d" 2>/dev/null || true
  log "stopped"
}

cmd_status() {
  local d name f state=0
  d="$(resolve_dir "${1:-}")"
  for name in mon.a osd.0 client.rgw; do
    f="$d/run/$name.pid"
    if pid_alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: stopped"; state=1; fi
  done
  if [[ -s "$d/ceph.json" ]]; then
    PORT="$(sed -n 's/^rgw_frontends = .*endpoint=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/ceph.conf")"
    if s3_answers; then echo "s3: http://127.0.0.1:$PORT answers"; else echo "s3: http://127.0.0.1:$PORT not answering"; state=1; fi
  fi
  return "$state"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *) echo "usage: $0 install | start [DIR] | stop [DIR] | status [DIR]" >&2; exit 2 ;;
esac
