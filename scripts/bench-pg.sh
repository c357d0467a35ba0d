#!/usr/bin/env bash
# `just bench-pg`: pgbench select-only (-S) in simple and prepared mode at 1
# and 8 clients against the same PostgreSQL three ways, in one run: direct,
# through PgBouncer (session pooling), and through Sluice with one guardrail
# (sql-guardrail, denying DROP and TRUNCATE) and one masker (mask-email).
# Prints TPS and the ratios Sluice/direct and Sluice/PgBouncer, and the CPU
# time PgBouncer and Sluice
# each spent per transaction (their ratio is the steadier measure here).
# The same run measures a second gateway with no plugins and no session
# recordings ("relay" columns; the audit log stays on), which splits
# Sluice's cost into the relay's and the policy's (BENCH_RELAY=0 skips it).
# A second table gives the whole machine's CPU time per transaction in each
# run and what that leaves Sluice at PgBouncer's throughput (see the end).
#
# All of them are plaintext on loopback (Sluice with allow_plaintext_loopback)
# so that TLS cost does not blur the proxy cost. DURATION (seconds per run,
# default 10) and SCALE (pgbench -s, default 10) can be set in the
# environment, and so can MODES and CLIENTS (the lists to run).
#
# For A/B breakdowns: SLUICE_EXTRA_TOML appends to the gateway's config
# (e.g. "[recording]\nenabled = false"), BENCH_PLUGINS replaces the
# connection's plugin list ('' for none; '"deny-word", "mask-email"' for a
# guardrail that also judges every execution's bound values), BENCH_STATE_DIR moves the state
# directory (e.g. to /dev/shm, to separate file-system cost), BENCH_WORKERS
# sets `[gateway] session_workers` (default: one per core), and
# SLUICE_BIN / PLUGINS_DIR run a build kept aside instead of this checkout.
# BENCH_PIN=1 gives the proxies cores of their own (scripts/lib/pin.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
duration="${DURATION:-10}"
scale="${SCALE:-10}"

pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
if ! command -v pgbouncer >/dev/null 2>&1; then
  echo "==> installing pgbouncer" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  # Debian's package may start its own instance; this script runs its own.
  service pgbouncer stop >/dev/null 2>&1 || true
fi

# SLUICE_BIN and PLUGINS_DIR run a given build (e.g. a baseline kept aside)
# instead of building this checkout.
if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release -q -p sluice
  SLUICE_BIN="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
fi
sluice_bin="$SLUICE_BIN"
[ -n "${PLUGINS_DIR:-}" ] || scripts/build-plugins.sh 2>/dev/null
plugins_dir="${PLUGINS_DIR:-target/plugins}"

# shellcheck source=scripts/lib/pin.sh
. "$root/scripts/lib/pin.sh"

work="$(mktemp -d /tmp/sluice-bench-pg.XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$work"
  as_pg=(runuser -u postgres --)
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port); bouncer_port=$(free_port); sluice_port=$(free_port); admin_port=$(free_port)
password=bench-pw

echo "$password" > "$work/pwfile"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth=scram-sha-256 --pwfile="$work/pwfile" --no-sync >/dev/null
"${on_load[@]}" "${as_pg[@]}" "$pgbin/postgres" -D "$work/data" -p "$pg_port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$work" -c max_connections=100 -c fsync=off >"$work/postgres.log" 2>&1 &
pids+=($!)
export PGPASSWORD=$password
for _ in $(seq 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.1; done
"$pgbin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "create role bench login password '$password'" -c "create database bench owner bench"
"$pgbin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$pg_port" -U bench bench >/dev/null 2>&1

cat >"$work/pgbouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$pg_port dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = plain
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
echo "\"bench\" \"$password\"" > "$work/userlist.txt"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work"/pgbouncer.ini "$work"/userlist.txt
"${on_proxy[@]}" "${as_pg[@]}" pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)

# BENCH_PLUGINS replaces the plugin list (e.g. '' for none, to measure the relay alone).
bench_plugins=${BENCH_PLUGINS-'"sql-guardrail", "mask-email"'}
# start_sluice NAME PORT ADMIN_PORT PLUGINS EXTRA_TOML: a gateway in
# $work/NAME; its pid is appended to pids.
start_sluice() {
  local dir="$work/$1"
  mkdir -p "$dir/plugins"
  cp "$plugins_dir/deny-word.wasm" "$plugins_dir/sql-guardrail.wasm" "$plugins_dir/mask-email.wasm" "$dir/plugins/"
  cat >"$dir/sluice.toml" <<TOML
[gateway]
state_dir = "${BENCH_STATE_DIR:-state}/$1"
${BENCH_WORKERS:+session_workers = $BENCH_WORKERS}
[listen]
postgres = "127.0.0.1:$2"
admin = "127.0.0.1:$3"
[postgres]
allow_plaintext_loopback = true
[plugins]
dir = "plugins"
${SLUICE_WRAPPER:+max_instances = 4  # valgrind cannot map the default instance pool}
[plugins.config.deny-word]
words = ["drop", "truncate"]
[plugins.config.sql-guardrail.default]
deny_commands = ["DROP", "TRUNCATE"]
[[connections]]
name = "bench"
kind = "postgres"
upstream = "127.0.0.1:$pg_port"
database = "bench"
user = "bench"
password_env = "BENCH_PASSWORD"
allow_groups = ["agents"]
plugins = [$4]
$5
TOML
  # SLUICE_WRAPPER runs the gateway under a profiler, e.g.
  # SLUICE_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=/tmp/sluice.cg"
  # (with MODES=simple CLIENTS=1 BENCH_RELAY=0 for a short, single-threaded
  # profile). The relay-only gateway never runs under it.
  local wrapper=""
  [ "$1" = sluice ] && wrapper=${SLUICE_WRAPPER:-}
  # shellcheck disable=SC2086
  (cd "$dir" && BENCH_PASSWORD=$password SLUICE_LOG=warn exec "${on_proxy[@]}" $wrapper "$sluice_bin" --config sluice.toml serve) &
  pids+=($!)
  for _ in $(seq 600); do curl -sf "127.0.0.1:$3/readyz" >/dev/null && break; sleep 0.1; done
}
start_sluice sluice "$sluice_port" "$admin_port" "$bench_plugins" "${SLUICE_EXTRA_TOML:-}"
sluice_pid=${pids[-1]}
# The same relay without plugins and without session recordings (the audit
# log stays on: it cannot be turned off), in the same run: what the policy
# costs beside what the relay itself costs. BENCH_RELAY=0 leaves it out.
relay=${BENCH_RELAY:-1}
if [ "$relay" = 1 ]; then
  relay_port=$(free_port); relay_admin=$(free_port)
  start_sluice relay "$relay_port" "$relay_admin" "" $'[recording]\nenabled = false'
  relay_pid=${pids[-1]}
fi
if [ -n "${SLUICE_WRAPPER:-}" ]; then sleep 20; else sleep 1; fi
token=$(cd "$work/sluice" && "$sluice_bin" --config sluice.toml token issue --subject bench-agent --group agents --ttl 2h)
# Each gateway has its own dev issuer.
[ "$relay" = 1 ] && relay_token=$(cd "$work/relay" && "$sluice_bin" --config sluice.toml token issue --subject bench-agent --group agents --ttl 2h)

# shellcheck source=scripts/lib/cpu.sh
. "$root/scripts/lib/cpu.sh"
bouncer_pid=$(cat "$work/pgbouncer.pid" 2>/dev/null || pgrep -n -x pgbouncer)

run() { # target port password mode clients [pid]: prints "tps cpu_us_per_transaction machine_us_per_transaction"
  local out before after n m_before m_after
  before=$([ -n "${6:-}" ] && cpu_ticks "$6" || echo 0)
  m_before=$(machine_ticks)
  # libpq prefers TLS where it is offered, and only Sluice offers it here:
  # all of them are measured in plaintext.
  out=$(PGSSLMODE=disable PGPASSWORD=$3 "${on_load[@]}" "$pgbin/pgbench" -n -S -T "$duration" -M "$4" -c "$5" -j "$(( $5 < 2 ? $5 : 2 ))" \
    -h 127.0.0.1 -p "$2" -U bench bench 2>&1) || { echo "$out" >&2; echo "0 0"; return; }
  after=$([ -n "${6:-}" ] && cpu_ticks "$6" || echo 0)
  m_after=$(machine_ticks)
  n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  echo "$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1) $(( n > 0 ? (after - before) * tick_us / n : 0 ))" \
    "$(( n > 0 ? (m_after - m_before) * tick_us / n : 0 ))"
}

# Throughput is shared out among pgbench, PostgreSQL and the proxy on the
# same cores; the proxy's own CPU time per transaction (from /proc) is the
# steadier measure on a small, noisy machine. The relay columns are the
# gateway without plugins and recordings.
ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else '0')"; }
printf '%-9s %-8s %8s %10s %8s %14s %16s %11s %10s %10s %6s %10s %14s\n' mode clients direct pgbouncer sluice sluice/direct sluice/pgbouncer \
  "cpu/tx pgb" "cpu/tx sl" "cpu ratio" relay relay/pgb "cpu/tx relay"
second=()
for mode in ${MODES:-simple prepared}; do
  for clients in ${CLIENTS:-1 8}; do
    read -r d _ d_m < <(run direct "$pg_port" "$password" "$mode" "$clients")
    read -r b b_cpu b_m < <(run pgbouncer "$bouncer_port" "$password" "$mode" "$clients" "$bouncer_pid")
    read -r s s_cpu s_m < <(PGUSER=bench run sluice "$sluice_port" "$token" "$mode" "$clients" "$sluice_pid")
    r=0 r_cpu=0 r_m=0
    if [ "$relay" = 1 ]; then
      read -r r r_cpu r_m < <(PGUSER=bench run relay "$relay_port" "$relay_token" "$mode" "$clients" "$relay_pid")
    fi
    # The second table: each side's busy cores when pinned, else the budget.
    if [ "$pinned" = 1 ]; then
      second+=("$(python3 -c "
b, s, r = $b, $s, $r
print(f'{\"$mode\":<9} {\"$clients\":<8} {$b_cpu * b / 1e6:>10.2f} {$s_cpu * s / 1e6:>8.2f} {$r_cpu * r / 1e6:>8.2f}'
      f'   {($b_m - $b_cpu) * b / 1e6:>10.2f} {($s_m - $s_cpu) * s / 1e6:>8.2f} {($r_m - $r_cpu) * r / 1e6:>8.2f}')")")
    else
      second+=("$(printf '%-9s %-8s %8sus %11sus %6sus %9sus %6sus %9sus %6sus %13sus %12s' "$mode" "$clients" "$d_m" \
        "$b_m" "$((b_m - b_cpu))" "$s_m" "$((s_m - s_cpu))" "$r_m" "$((r_m - r_cpu))" "$((b_m - (s_m - s_cpu)))" \
        "$(python3 -c "print(f'{$b_m * $b / 1e6:.1f} / {$s_m * $s / 1e6:.1f}')")")")
    fi
    printf '%-9s %-8s %8.0f %10.0f %8.0f %14s %16s %9sus %8sus %10s %6.0f %10s %12sus\n' "$mode" "$clients" "$d" "$b" "$s" \
      "$(ratio "$s" "$d")" "$(ratio "$s" "$b")" "$b_cpu" "$s_cpu" "$(ratio "$s_cpu" "$b_cpu")" \
      "$r" "$(ratio "$r" "$b")" "$r_cpu"
  done
done

echo "($pin_note)"
if [ "$pinned" = 1 ]; then
  # Each side has cores of its own, so the budget below does not apply:
  # throughput is bound by whichever side fills its cores first.
  echo
  echo "Cores busy on each side (proxy: CPU $proxy_cpus; pgbench, PostgreSQL and the kernel's share: CPU $load_cpus)"
  printf '%-9s %-8s %10s %8s %8s   %10s %8s %8s\n' mode clients "proxy: pgb" sluice relay "load: pgb" sluice relay
  printf '%s\n' "${second[@]}"
  exit 0
fi
# Where the transactions' CPU goes. pgbench, PostgreSQL and the proxy share
# the cores, so on a busy machine throughput is the cores divided by the
# machine's CPU time per transaction: for Sluice to match PgBouncer, the
# whole machine may spend no more per transaction than it does with
# PgBouncer, and what is left of that once pgbench and PostgreSQL have
# their share (as measured in Sluice's own phase) is Sluice's budget. With
# one client the cores are not busy and latency, not CPU, bounds throughput.
echo
echo "CPU time per transaction on the whole machine ('rest': pgbench, PostgreSQL, the kernel's share; all but the proxy)"
printf '%-9s %-8s %10s %13s %8s %11s %8s %11s %8s %15s %12s\n' mode clients direct pgbouncer rest sluice rest relay rest \
  "sluice budget" "cores busy"
printf '%s\n' "${second[@]}"
echo "(cores busy: PgBouncer's run / Sluice's. The budget holds where they are near $(nproc): a run that leaves"
echo " cores idle, as one client does, is bound by its round trips, not by CPU.)"
