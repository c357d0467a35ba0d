#!/usr/bin/env bash
# `just bench-http`: wrk against one small JSON GET three ways, in one run:
# direct to the upstream (nginx serving the JSON itself), through nginx
# `proxy_pass` (pooled upstream connections), and through Sluice with one
# guardrail (http-guardrail) and one masker (mask-email, which masks the
# address in the response). Prints requests/s, p99 latency and the ratios
# Sluice/direct and Sluice/nginx, and the CPU time the two proxies each
# spent per request (their ratio is the steadier measure on a small machine).
# The same run measures a second gateway with no plugins and no session
# recordings ("relay"; the audit log stays on), which splits Sluice's cost
# into the proxy's and the policy's (BENCH_RELAY=0 skips it). A last line
# gives the whole machine's CPU time per request in each proxy's run and
# what that leaves Sluice at 0.9x nginx's throughput (see the end).
#
# All of them are plain HTTP on loopback (Sluice with allow_plaintext_loopback)
# so that TLS cost does not blur the proxy cost. DURATION (seconds per run,
# default 10), CONNECTIONS (default 32) and THREADS (wrk threads, default 2)
# can be set in the environment; SLUICE_EXTRA_TOML is appended to the gateway's
# configuration (A/B runs, e.g. "[recording]\nenabled = false"); BENCH_PLUGINS
# replaces the connection's plugin list ('' for none); BENCH_STATE_DIR moves
# the state directory; BENCH_WORKERS sets `[gateway] session_workers`;
# SLUICE_BIN / PLUGINS_DIR run an already built binary
# and plugins instead of building this checkout. BENCH_PIN=1 gives the
# proxies cores of their own (scripts/lib/pin.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-2}"

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian's package starts its own nginx on port 80; this script runs its own.
  $sudo service nginx stop >/dev/null 2>&1 || true
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release -q -p sluice
  SLUICE_BIN="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
fi
[ -n "${PLUGINS_DIR:-}" ] || scripts/build-plugins.sh 2>/dev/null
plugins_dir="${PLUGINS_DIR:-target/plugins}"

# shellcheck source=scripts/lib/pin.sh
. "$root/scripts/lib/pin.sh"

work="$(mktemp -d /tmp/sluice-bench-http.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up_port=$(free_port); proxy_port=$(free_port); sluice_port=$(free_port); admin_port=$(free_port)
json='{"id":42,"name":"widget","owner":"ann@example.com","tags":["a","b"],"price":12.5}'

# nginx_conf NAME WORKERS: $work/NAME.conf, whose http block is stdin.
nginx_conf() {
  {
    cat <<NGINX
worker_processes $2;
pid $work/$1.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
NGINX
    cat
    echo "}"
  } >"$work/$1.conf"
}
# The upstream and nginx's proxy are separate instances, as they would be
# in a deployment: the proxy's CPU time is its own, and with BENCH_PIN=1
# the upstream stays on the load generator's cores.
nginx_conf upstream "$load_n" <<NGINX
  server {
    listen 127.0.0.1:$up_port;
    keepalive_requests 1000000;
    location / {
      default_type application/json;
      return 200 '$json';
    }
  }
NGINX
nginx_conf proxy "$proxy_n" <<NGINX
  upstream backend {
    server 127.0.0.1:$up_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$proxy_port;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
NGINX
"${on_load[@]}" "$nginx_bin" -p "$work" -c "$work/upstream.conf" -g 'daemon off;' 2>>"$work/nginx-error.log" &
pids+=($!)
upstream_pid=$!
"${on_proxy[@]}" "$nginx_bin" -p "$work" -c "$work/proxy.conf" -g 'daemon off;' 2>>"$work/nginx-error.log" &
pids+=($!)
nginx_pid=$!

# BENCH_PLUGINS replaces the plugin list (e.g. '' for none, to measure the proxy alone).
bench_plugins=${BENCH_PLUGINS-'"http-guardrail", "mask-email"'}
# start_sluice NAME PORT ADMIN_PORT PLUGINS EXTRA_TOML: a gateway in
# $work/NAME; its pid is appended to pids.
start_sluice() {
  local dir="$work/$1"
  mkdir -p "$dir/plugins"
  cp "$plugins_dir/http-guardrail.wasm" "$plugins_dir/mask-email.wasm" "$dir/plugins/"
  cat >"$dir/sluice.toml" <<TOML
[gateway]
state_dir = "${BENCH_STATE_DIR:-state}/$1"
${BENCH_WORKERS:+session_workers = $BENCH_WORKERS}
[listen]
http = "127.0.0.1:$2"
admin = "127.0.0.1:$3"
[http]
allow_plaintext_loopback = true
[plugins]
dir = "plugins"
[plugins.config.http-guardrail]
default = "allow"
[[plugins.config.http-guardrail.rules]]
name = "no-admin-delete"
methods = ["DELETE"]
path = "/admin/*"
action = "deny"
[[plugins.config.http-guardrail.rules]]
name = "read-only-for-readers"
groups = ["readers"]
methods = ["POST", "PUT", "PATCH", "DELETE"]
action = "deny"
[[connections]]
name = "bench"
kind = "http"
upstream = "http://127.0.0.1:$up_port"
credential = "bearer"
credential_env = "BENCH_UPSTREAM_TOKEN"
allow_groups = ["agents"]
plugins = [$4]
$5
TOML
  # SLUICE_WRAPPER runs the gateway under a profiler (see bench-pg.sh); the
  # relay-only gateway never runs under it.
  local wrapper=""
  [ "$1" = sluice ] && wrapper=${SLUICE_WRAPPER:-}
  # shellcheck disable=SC2086
  (cd "$dir" && BENCH_UPSTREAM_TOKEN=upstream-secret SLUICE_LOG=warn exec "${on_proxy[@]}" $wrapper "$SLUICE_BIN" --config sluice.toml serve) &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "127.0.0.1:$3/api/v1/plugins" 2>/dev/null | grep -q mask-email && break
    sleep 0.1
  done
}
start_sluice sluice "$sluice_port" "$admin_port" "$bench_plugins" "${SLUICE_EXTRA_TOML:-}"
sluice_pid=${pids[-1]}
# The same proxy without plugins and without session recordings (the audit
# log stays on), in the same run: what the policy costs beside what the
# proxy itself costs. BENCH_RELAY=0 leaves it out.
relay=${BENCH_RELAY:-1}
if [ "$relay" = 1 ]; then
  relay_port=$(free_port); relay_admin=$(free_port)
  start_sluice relay "$relay_port" "$relay_admin" "" $'[recording]\nenabled = false'
  relay_pid=${pids[-1]}
fi
sleep 1
token=$(cd "$work/sluice" && "$SLUICE_BIN" --config sluice.toml token issue --subject bench-agent --group agents --ttl 2h)
# Each gateway has its own dev issuer.
[ "$relay" = 1 ] && relay_token=$(cd "$work/relay" && "$SLUICE_BIN" --config sluice.toml token issue --subject bench-agent --group agents --ttl 2h)

direct="http://127.0.0.1:$up_port/items/42"
proxied="http://127.0.0.1:$proxy_port/items/42"
sluiced="http://127.0.0.1:$sluice_port/bench/items/42"
relayed="http://127.0.0.1:${relay_port:-0}/bench/items/42"
masked=$(curl -sf -H "Authorization: Bearer $token" "$sluiced")
[[ "$bench_plugins" != *mask-email* ]] || echo "$masked" | grep -q '\[EMAIL\]' || { echo "Sluice did not mask the response: $masked" >&2; exit 1; }

# shellcheck source=scripts/lib/cpu.sh
. "$root/scripts/lib/cpu.sh"

# run PID URL [header]: prints "requests/s p99_ms cpu_us_per_request
# machine_us_per_request" (the CPU time of PID and its descendants over the
# run, and that of the whole machine, per request).
run() {
  local out pid=$1 before after m_before m_after
  shift
  before=$(cpu_ticks "$pid")
  m_before=$(machine_ticks)
  if [ $# -gt 1 ]; then
    out=$("${on_load[@]}" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -H "$2" "$1")
  else
    out=$("${on_load[@]}" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$1")
  fi
  after=$(cpu_ticks "$pid")
  m_after=$(machine_ticks)
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; fi
  local rps p99 n
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}')
  n=$(echo "$out" | awk '/ requests in / {print $1}')
  python3 -c "n = ${n:-0}; print(${rps:-0}, ${p99:-0}, ($after - $before) * $tick_us / n if n else 0, ($m_after - $m_before) * $tick_us / n if n else 0)"
}

# A short warm-up for each, so pools and plugin instances are ready.
DURATION_SAVE=$duration; duration=2
run "$upstream_pid" "$direct" >/dev/null; run "$nginx_pid" "$proxied" >/dev/null
run "$sluice_pid" "$sluiced" "Authorization: Bearer $token" >/dev/null
[ "$relay" = 1 ] && run "$relay_pid" "$relayed" "Authorization: Bearer $relay_token" >/dev/null
duration=$DURATION_SAVE

read -r d_rps d_p99 _ _ < <(run "$upstream_pid" "$direct")
read -r n_rps n_p99 n_cpu n_m < <(run "$nginx_pid" "$proxied")
read -r s_rps s_p99 s_cpu s_m < <(run "$sluice_pid" "$sluiced" "Authorization: Bearer $token")
r_rps=0 r_p99=0 r_cpu=0 r_m=0
if [ "$relay" = 1 ]; then
  read -r r_rps r_p99 r_cpu r_m < <(run "$relay_pid" "$relayed" "Authorization: Bearer $relay_token")
fi

echo "small JSON GET, wrk -t$threads -c$connections -d${duration}s, $(nproc) cores"
python3 - "$d_rps" "$d_p99" "$n_rps" "$n_p99" "$n_cpu" "$s_rps" "$s_p99" "$s_cpu" "$r_rps" "$r_p99" "$r_cpu" "${bench_plugins//\"/}" \
  "$n_m" "$s_m" "$r_m" "$pinned" "$pin_note" <<'PY'
import sys
d, dp, n, np_, proxy_cpu, s, sp, sc, r, rp, rc = (float(x) for x in sys.argv[1:12])
plugins = sys.argv[12]
n_m, s_m, r_m = (float(x) for x in sys.argv[13:16])
pinned, pin_note = sys.argv[16] == "1", sys.argv[17]
print(f"{'target':<34} {'requests/s':>12} {'p99 ms':>10} {'proxy cpu/req':>14}")
print(f"{'direct (nginx return 200)':<34} {d:>12.0f} {dp:>10.2f} {'':>14}")
print(f"{'nginx proxy_pass':<34} {n:>12.0f} {np_:>10.2f} {proxy_cpu:>12.1f}us")
print(f"{'sluice [' + plugins + ']':<34} {s:>12.0f} {sp:>10.2f} {sc:>12.1f}us")
if r:
    print(f"{'sluice relay (no plugins/recording)':<34} {r:>12.0f} {rp:>10.2f} {rc:>12.1f}us")
print(f"sluice/direct {s/d if d else 0:.2f}   sluice/nginx {s/n if n else 0:.2f}   (target: sluice/nginx >= 0.90)   "
      f"cpu/req sluice/nginx {sc/proxy_cpu if proxy_cpu else 0:.2f}")
if r:
    print(f"relay/nginx {r/n if n else 0:.2f}   cpu/req relay/nginx {rc/proxy_cpu if proxy_cpu else 0:.2f}")
print(f"({pin_note})")
if pinned:
    # Each side has cores of its own, so the budget below does not apply:
    # throughput is bound by whichever side fills its cores first.
    print()
    print("cores busy on each side (proxy | wrk, the upstream and the kernel's share):")
    print(f"nginx proxy_pass {proxy_cpu * n / 1e6:.2f} | {(n_m - proxy_cpu) * n / 1e6:.2f}   "
          f"sluice {sc * s / 1e6:.2f} | {(s_m - sc) * s / 1e6:.2f}"
          + (f"   relay {rc * r / 1e6:.2f} | {(r_m - rc) * r / 1e6:.2f}" if r else ""))
    sys.exit(0)
# wrk, the upstream and the proxy share the cores: on a busy machine
# throughput is the cores divided by the machine's CPU time per request.
# 0.9x nginx's throughput allows the
# machine 1/0.9 of its CPU per request with nginx proxying; what the rest
# (wrk, the upstream, the kernel) takes of that in Sluice's own run is
# gone, and the remainder is Sluice's budget.
print()
print("CPU time per request on the whole machine ('rest': wrk, the upstream, the kernel's share; all but the proxy)")
print(f"nginx proxy_pass {n_m:.1f}us   sluice {s_m:.1f}us (rest {s_m - sc:.1f}us)"
      + (f"   relay {r_m:.1f}us (rest {r_m - rc:.1f}us)" if r else "")
      + f"   sluice budget for 0.9x nginx: {n_m / 0.9 - (s_m - sc):.1f}us")
print(f"cores busy: nginx proxy_pass {n_m * n / 1e6:.1f}, sluice {s_m * s / 1e6:.1f} (the budget holds where they are near the core count)")
PY
