#!/usr/bin/env bash
# Build, test, pack and run a local Pegasus cluster. ./run.sh help lists the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"

# PEGASUS_ONEBOX_DIR moves the onebox elsewhere; the benchmarks run theirs in a
# temporary directory so that they leave a developer's onebox alone.
ONEBOX_DIR="${PEGASUS_ONEBOX_DIR:-$ROOT/onebox}"
BIN_DIR="$ROOT/bin"
ZK_PORT="${ZK_PORT:-22181}"

usage() {
  cat <<'USAGE'
Usage: ./run.sh <command> [options]

Build and test:
  help                       show this help
  build                      build pegasus_server, pegasus_shell and pegasus_bench into ./bin
  test                       run the test suite (go vet, all tests under the race detector)
  chaos                      run the chaos test (servers killed under load; a few minutes)
  pack_server [--secret FILE]
                             build and pack pegasus-server-<version>-<sha>-<platform>-<build>/
                             and its .tar.gz (mode 0600): bin/ holds pegasus_server,
                             pegasus_shell, the config.ini template to fill in and
                             cluster_secret, the cluster secret (mode 0600): a copy of FILE
                             (or of $PEGASUS_CLUSTER_SECRET_FILE), else a fresh one. Every
                             host of one cluster needs the same secret: pack for a running
                             cluster with its secret

Local cluster ("onebox", all on 127.0.0.1, files under ./onebox):
  start_onebox [-m N] [-r N] [--use_zk] [--no_collector] [--pprof]
                             build, then start N meta servers (34601..) and N replica
                             servers (34801..), default 3 and 3, and the collector (34101)
                             unless --no_collector; --pprof serves Go's profiler at
                             http://127.0.0.1:<port>/pprof/; --use_zk keeps the
                             metadata in a local ZooKeeper (port 22181) instead of the
                             embedded store; waits until the temp table is healthy. The
                             servers share the secret ./onebox/cluster_secret, made once
  stop_onebox                stop every onebox process
  clear_onebox               stop the onebox and delete its data (and its ZooKeeper data
                             and cluster secret)
  list_onebox                list the onebox processes
  start_zk / stop_zk / clear_zk
                             a local ZooKeeper on 127.0.0.1:22181 (Debian package zookeeper),
                             data under ./onebox/zk
  start_onebox_instance <meta|replica|collector> <index>
  stop_onebox_instance  <meta|replica|collector> <index>
  restart_onebox_instance <meta|replica|collector> <index>
  bench [flags]              build and run pegasus_bench against the onebox (bench -h: flags)
  bench --peers [flags]      the peer comparison (docs/benchmark.md): installs redis-server
                             and etcd-server from Debian when missing, then runs the same
                             load on Redis, a 3-member etcd and a fresh onebox (3 meta,
                             3 replica, ports 34601.. and 34801.. must be free), one after
                             the other; flags go to pegasus_peers (-runs 3, -duration 20s,
                             -systems redis,etcd,pegasus, -pprof_dir DIR, -h for all)
  bench --check [flags]      start a fresh onebox, measure server CPU per write and per read
                             and fail when either grew by more than 25% over the baseline
                             of this machine kind, bench/baseline-<nproc>cpu-<cpu model>.json
  bench --baseline [flags]   the same run, writing that baseline instead
  shell [flags]              build and start pegasus_shell on the onebox (or on the cluster of
                             ./onebox/config.ini when it exists); flags go to the shell

A deployed cluster:
  clear_cluster -c CONFIG [-y]
                             the full cleanup of a cluster, on this host: deletes the app
                             dir, slog dir and data dirs named by CONFIG and the cluster
                             root in ZooKeeper; asks for confirmation unless -y
USAGE
}

die() { echo "run.sh: $*" >&2; exit 1; }

do_build() { make -s build; }

# ---------------------------------------------------------------- ZooKeeper (onebox)

zk_classpath() { echo "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"; }

start_zk() {
  [ -f /usr/share/java/zookeeper.jar ] || die "ZooKeeper is not installed (apt-get install zookeeper)"
  local dir="$ONEBOX_DIR/zk"
  mkdir -p "$dir/data"
  if [ -f "$dir/zk.pid" ] && kill -0 "$(cat "$dir/zk.pid")" 2>/dev/null; then
    echo "ZooKeeper already running on 127.0.0.1:$ZK_PORT"; return
  fi
  cat > "$dir/zoo.cfg" <<ZK
tickTime=1000
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
maxSessionTimeout=60000
4lw.commands.whitelist=ruok,stat
ZK
  nohup java -XX:-UsePerfData -Dzookeeper.log.dir="$dir" -cp "$(zk_classpath)" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" > "$dir/zk.out" 2>&1 &
  echo $! > "$dir/zk.pid"
  for _ in $(seq 1 60); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && echo ruok >&3 && head -c 4 <&3 | grep -q imok) 2>/dev/null; then
      echo "ZooKeeper started on 127.0.0.1:$ZK_PORT"; return
    fi
    sleep 0.5
  done
  die "ZooKeeper did not start; see $dir/zk.out"
}

stop_zk() {
  local pidf="$ONEBOX_DIR/zk/zk.pid"
  if [ -f "$pidf" ]; then
    kill "$(cat "$pidf")" 2>/dev/null || true
    rm -f "$pidf"
    echo "ZooKeeper stopped"
  fi
}

# ---------------------------------------------------------------- cluster secret

# new_secret prints a fresh cluster secret: 32 random bytes in hex.
new_secret() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex 32
  else
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo
  fi
}

# write_secret FILE writes a fresh secret into FILE, mode 0600, atomically.
write_secret() {
  local f=$1
  ( umask 077; new_secret > "$f.tmp" ) || die "cannot write $f"
  mv "$f.tmp" "$f"
}

# check_secret FILE fails unless FILE holds at least one secret and every secret in
# it has 16 characters or more, as the servers require.
check_secret() {
  [ -r "$1" ] || die "cluster secret file $1: not readable"
  awk '{ gsub(/^[ \t\r]+|[ \t\r]+$/, "") } $0 == "" || /^#/ { next } { n++; if (length($0) < 16) bad = NR }
       END { if (bad) { print "line " bad ": a secret needs at least 16 characters (e.g. openssl rand -hex 32)"; exit 1 }
             if (!n) { print "no secret in the file"; exit 1 } }' "$1" >&2 ||
    die "cluster secret file $1 is not usable"
}

# ---------------------------------------------------------------- onebox

instance_name() { echo "$1$2"; }

onebox_config() {
  local metas=$1 replicas=$2 use_zk=$3
  local list=""
  for i in $(seq 1 "$metas"); do list="${list:+$list,}127.0.0.1:$((34600 + i))"; done
  local state="meta_state_service_simple" lock="distributed_lock_service_simple"
  if [ "$use_zk" = 1 ]; then state="meta_state_service_zookeeper"; lock="distributed_lock_service_zookeeper"; fi
  mkdir -p "$ONEBOX_DIR"
  # One secret for the life of the onebox (clear_onebox deletes it): every server,
  # restarted or added later, proves its membership with it.
  if [ ! -f "$ONEBOX_DIR/cluster_secret" ]; then
    write_secret "$ONEBOX_DIR/cluster_secret"
    echo "created the onebox cluster secret $ONEBOX_DIR/cluster_secret"
  fi
  sed -e "s#%{meta.count}#$metas#g" -e "s#%{replica.count}#$replicas#g" \
      -e "s#%{app.dir}#$ONEBOX_DIR#g" -e "s#%{meta.server.list}#$list#g" \
      -e "s#%{zk.server.list}#127.0.0.1:$ZK_PORT#g" \
      -e "s#%{meta.state.service}#$state#g" -e "s#%{lock.service}#$lock#g" \
      config/template/onebox.ini > "$ONEBOX_DIR/config.ini"
}

start_instance() {
  local role=$1 idx=$2 name
  name=$(instance_name "$role" "$idx")
  local pidf="$ONEBOX_DIR/$name.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$pidf"))"; return
  fi
  local sel="$role@$idx"
  [ "$role" = collector ] && sel="collector"
  nohup "$BIN_DIR/pegasus_server" "$ONEBOX_DIR/config.ini" -app_list "$sel" > "$ONEBOX_DIR/$name.out" 2>&1 &
  echo $! > "$pidf"
  echo "started $name (pid $!)"
}

stop_instance() {
  local name pidf
  name=$(instance_name "$1" "$2")
  pidf="$ONEBOX_DIR/$name.pid"
  [ -f "$pidf" ] || { echo "$name is not running"; return; }
  local pid; pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
  echo "stopped $name"
}

onebox_instances() {
  [ -d "$ONEBOX_DIR" ] || return 0
  for f in "$ONEBOX_DIR"/*.pid; do
    [ -e "$f" ] || continue
    basename "$f" .pid
  done
}

wait_healthy() {
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    for port in 34601 34602 34603; do
      local out
      out=$(curl -s -L --max-time 2 "http://127.0.0.1:$port/meta/apps?detail" 2>/dev/null || true)
      if echo "$out" | grep -q '"unhealthy_app_count": "0"' && echo "$out" | grep -q '"fully_healthy_app_count": "[1-9]'; then
        echo "onebox is healthy: every table fully replicated"; return 0
      fi
    done
    sleep 1
  done
  echo "warning: the tables are not fully healthy after 60 s; see $ONEBOX_DIR/*.out and $ONEBOX_DIR/log" >&2
  return 1
}

start_onebox() {
  local metas=3 replicas=3 use_zk=0 collector=1 pprof=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --pprof) pprof=1; shift ;;
      -m|--meta_count) metas=$2; shift 2 ;;
      -r|--replica_count) replicas=$2; shift 2 ;;
      --use_zk) use_zk=1; shift ;;
      --collector) collector=1; shift ;;
      --no_collector) collector=0; shift ;;
      *) die "start_onebox: unknown option $1" ;;
    esac
  done
  do_build
  [ "$use_zk" = 1 ] && start_zk
  onebox_config "$metas" "$replicas" "$use_zk"
  if [ "$pprof" = 1 ]; then printf '\n[http]\nenable_pprof = true\n' >> "$ONEBOX_DIR/config.ini"; fi
  for i in $(seq 1 "$metas"); do start_instance meta "$i"; done
  for i in $(seq 1 "$replicas"); do start_instance replica "$i"; done
  [ "$collector" = 1 ] && start_instance collector ""
  if command -v curl >/dev/null; then wait_healthy || true; fi
  echo "shell: ./run.sh shell   (meta servers: $(grep '^server_list' "$ONEBOX_DIR/config.ini" | cut -d= -f2 | tr -d ' '))"
}

stop_onebox() {
  local any=0
  for name in $(onebox_instances); do
    any=1
    local role=${name%%[0-9]*} idx=${name##*[a-z]}
    stop_instance "$role" "$idx"
  done
  [ "$any" = 1 ] || echo "no onebox process is running"
  stop_zk
}

clear_onebox() {
  stop_onebox
  rm -rf "$ONEBOX_DIR"
  echo "onebox cleared"
}

list_onebox() {
  local any=0
  for name in $(onebox_instances); do
    local pid; pid=$(cat "$ONEBOX_DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then echo "$name	pid $pid	running"; else echo "$name	pid $pid	dead"; fi
    any=1
  done
  [ "$any" = 1 ] || echo "no onebox process"
}

# ---------------------------------------------------------------- benchmarks

# ensure_peer_packages installs the peers of the comparison from Debian when missing.
ensure_peer_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-benchmark >/dev/null || missing+=(redis-tools)
  command -v etcd >/dev/null || missing+=(etcd-server)
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "bench --peers needs ${missing[*]}: apt-get install -y ${missing[*]} (as root)"
  echo "installing ${missing[*]} from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" ||
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; } ||
    die "could not install ${missing[*]}"
}

# onebox_ports_free fails when something listens on the onebox's first ports: a
# benchmark would otherwise measure a onebox that is not its own.
onebox_ports_free() {
  local port
  for port in 34601 34602 34603 34801 34802 34803; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is in use (a onebox running? ./run.sh stop_onebox): the benchmark starts its own"
    fi
  done
}

# kill_pidfile ends the process of a pid file if it still runs the program named
# (the pid may have been reused since).
kill_pidfile() {
  local f=$1 comm=$2 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then kill "$pid" 2>/dev/null || true; fi
}

# bench_cleanup ends whatever a benchmark left running in its work dir (it stops
# everything itself; this is for when it was killed) and deletes the dir.
bench_cleanup() {
  local work=$1 f
  for f in "$work"/redis/redis-server.pid; do kill_pidfile "$f" redis-server; done
  for f in "$work"/etcd/etcd-m*.pid; do kill_pidfile "$f" etcd; done
  if [ -d "$work/onebox" ]; then ONEBOX_DIR="$work/onebox"; stop_onebox >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}

bench_peers() {
  ensure_peer_packages
  onebox_ports_free
  do_build
  (cd bench/peers && go build -o "$BIN_DIR/pegasus_peers" .)
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/pegasus_peers.XXXXXX")
  # shellcheck disable=SC2064 # the work dir is fixed now
  trap "bench_cleanup '$work'" EXIT
  trap 'exit 130' INT TERM
  "$BIN_DIR/pegasus_peers" -root "$ROOT" -workdir "$work" "$@"
}

# bench_check check|baseline [pegasus_bench flags]: a fresh onebox (no collector) in a
# temporary directory, the fill / write / read phases with server CPU accounting, and
# the baseline of this machine kind under bench/ checked or written.
bench_check() {
  local mode=$1; shift
  onebox_ports_free
  do_build
  local work flag=-check_baseline
  [ "$mode" = baseline ] && flag=-write_baseline
  work=$(mktemp -d "${TMPDIR:-/tmp}/pegasus_bench_check.XXXXXX")
  # shellcheck disable=SC2064
  trap "bench_cleanup '$work'" EXIT
  trap 'exit 130' INT TERM
  ONEBOX_DIR="$work/onebox"
  start_onebox --no_collector
  "$BIN_DIR/pegasus_bench" -onebox "$ONEBOX_DIR" -duration 15s "$flag" "$ROOT/bench" \
    -baseline_note "commit $(git rev-parse --short=8 HEAD 2>/dev/null || echo unknown)" "$@"
}

# ---------------------------------------------------------------- packing and cleanup

pack_server() {
  local version sha platform build_type name secret="${PEGASUS_CLUSTER_SECRET_FILE:-}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --secret) [ $# -ge 2 ] || die "pack_server: --secret needs a file"; secret=$2; shift 2 ;;
      *) die "pack_server: unknown option $1" ;;
    esac
  done
  [ -z "$secret" ] || check_secret "$secret"
  version=$(cat VERSION)
  sha=$(git rev-parse --short=8 HEAD 2>/dev/null || echo unknown)
  platform=$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)
  build_type=release
  name="pegasus-server-$version-$sha-$platform-$build_type"
  rm -rf "$name" "$name.tar.gz"
  mkdir -p "$name/bin"
  # Static binaries: LD_LIBRARY_PATH, which the guide sets, is harmless.
  CGO_ENABLED=0 make -s build BIN_DIR="$name/bin" VERSION="$version" GIT_SHA="$sha"
  rm -f "$name/bin/pegasus_bench"
  cp config/template/config.ini "$name/bin/config.ini"
  cp config/template/onebox.ini "$name/bin/config.onebox.ini.template"
  # The cluster secret the template's cluster_secret_file names (bin/cluster_secret).
  local secret_note
  if [ -n "$secret" ]; then
    ( umask 077; cp "$secret" "$name/bin/cluster_secret" ) && chmod 600 "$name/bin/cluster_secret"
    secret_note="bin/cluster_secret is a copy of $secret"
  else
    write_secret "$name/bin/cluster_secret"
    secret_note="bin/cluster_secret is a NEW cluster secret, generated for this package"
  fi
  mkdir -p "$name/docs"
  cp docs/*.md "$name/docs/" 2>/dev/null || true
  cp README.md VERSION "$name/"
  # The package holds the cluster secret: only its owner may read the archive.
  ( umask 077; tar czf "$name.tar.gz" "$name" )
  echo "packed $name/ and $name.tar.gz"
  echo "$secret_note (mode 0600; the .tar.gz is 0600 too: it holds the secret)."
  echo "Every server of one cluster must have the same cluster_secret: deploy this package to all"
  echo "of its hosts, and to add hosts to or upgrade a running cluster, pack with its secret:"
  echo "  ./run.sh pack_server --secret /path/to/the/cluster's/cluster_secret"
}

clear_cluster() {
  local cfg="" yes=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -c|--config) cfg=$2; shift 2 ;;
      -y|--yes) yes="-y"; shift ;;
      *) die "clear_cluster: unknown option $1" ;;
    esac
  done
  [ -n "$cfg" ] || die "usage: ./run.sh clear_cluster -c config.ini [-y]"
  local bin="$BIN_DIR/pegasus_server"
  [ -x "$bin" ] || do_build
  "$bin" "$cfg" -clear_cluster $yes
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  help|-h|--help) usage ;;
  build) do_build ;;
  test) make test ;;
  start_onebox) start_onebox "$@" ;;
  stop_onebox) stop_onebox ;;
  clear_onebox) clear_onebox ;;
  list_onebox) list_onebox ;;
  start_onebox_instance) [ $# -eq 2 ] || die "usage: start_onebox_instance <role> <index>"; start_instance "$1" "$2" ;;
  stop_onebox_instance) [ $# -eq 2 ] || die "usage: stop_onebox_instance <role> <index>"; stop_instance "$1" "$2" ;;
  restart_onebox_instance) [ $# -eq 2 ] || die "usage: restart_onebox_instance <role> <index>"; stop_instance "$1" "$2"; start_instance "$1" "$2" ;;
  start_zk) start_zk ;;
  stop_zk) stop_zk ;;
  clear_zk) stop_zk; rm -rf "$ONEBOX_DIR/zk"; echo "ZooKeeper data cleared" ;;
  chaos) make chaos ;;
  pack_server) pack_server "$@" ;;
  clear_cluster) clear_cluster "$@" ;;
  shell)
    go build -o "$BIN_DIR/pegasus_shell" ./cmd/pegasus_shell
    if [ -f "$ONEBOX_DIR/config.ini" ]; then
      exec "$BIN_DIR/pegasus_shell" --config "$ONEBOX_DIR/config.ini" --cluster onebox "$@"
    fi
    exec "$BIN_DIR/pegasus_shell" --meta 127.0.0.1:34601,127.0.0.1:34602,127.0.0.1:34603 "$@" ;;
  bench)
    case "${1:-}" in
      --peers) shift; bench_peers "$@" ;;
      --check) shift; bench_check check "$@" ;;
      --baseline) shift; bench_check baseline "$@" ;;
      *) go build -o "$BIN_DIR/pegasus_bench" ./cmd/pegasus_bench && exec "$BIN_DIR/pegasus_bench" "$@" ;;
    esac ;;
  *) echo "unknown command: $cmd" >&2; usage >&2; exit 2 ;;
esac
