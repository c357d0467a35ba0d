#!/usr/bin/env bash
# The quick-start demo: a throwaway PostgreSQL (initdb into the demo's state
# directory, seeded with fake customer data), the gateway in front of it with
# the embedded dev issuer and the first-party plugins, and a scripted agent
# session: an allowed query, a refused DROP, masked personal data, and the
# audit trail and session recordings it left. Then it prints a psql command with a fresh token and
# keeps everything running until Ctrl-C.
#
#   scripts/dev.sh demo            (installs what it needs first)
#   scripts/demo.sh --no-wait      exit after the scripted session (CI)
#
# SLUICE_BIN: a gateway binary to use instead of building one.
# DEMO_DIR:   where the state goes (default target/demo; wiped first).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
wait_at_end=1
[ "${1:-}" = "--no-wait" ] && wait_at_end=0

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
step() { printf '\n\033[36m$ %s\033[0m\n' "$*"; }

if [ -z "${SLUICE_BIN:-}" ]; then
  say "building the gateway and the plugins"
  cargo build -q -p sluice
  SLUICE_BIN="$root/target/debug/sluice"
fi
scripts/build-plugins.sh 2>/dev/null

pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL server binaries not found (scripts/dev.sh installs them)" >&2; exit 1; }
psql="$pgbin/psql"

demo="${DEMO_DIR:-$root/target/demo}"
rm -rf "$demo"
mkdir -p "$demo/plugins" "$demo/audit"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port); gw_port=$(free_port); admin_port=$(free_port)

# PostgreSQL refuses to run as root: as root, the cluster belongs to
# `postgres` and lives under /tmp (the checkout may sit where that user
# cannot reach, such as /root).
as_pg=()
pgdir="$demo"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  as_pg=(runuser -u postgres --)
  pgdir="$(mktemp -d /tmp/sluice-demo-pg.XXXXXX)"
  chown postgres "$pgdir"
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$pgdir" = "$demo" ] || rm -rf "$pgdir"
}
trap cleanup EXIT INT TERM

say "starting a throwaway PostgreSQL in $pgdir/pgdata (SCRAM auth, port $pg_port)"
app_password="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$pgdir/pgdata" "$pgdir/pgsock"
echo "$app_password" > "$pgdir/pwfile"
if [ "$(id -u)" = 0 ]; then chown -R postgres "$pgdir"; fi
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/pgdata" -U postgres --auth=scram-sha-256 \
  --pwfile="$pgdir/pwfile" --no-sync >/dev/null
"${as_pg[@]}" "$pgbin/postgres" -D "$pgdir/pgdata" -p "$pg_port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$pgdir/pgsock" >"$demo/postgres.log" 2>&1 &
pids+=($!)
export PGPASSWORD="$app_password"
for _ in $(seq 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.1; done
"$psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
create role app login password '$app_password';
create database app owner app;
SQL
"$psql" -X -q -h 127.0.0.1 -p "$pg_port" -U app -d app -v ON_ERROR_STOP=1 -f examples/demo/seed.sql
unset PGPASSWORD

say "starting the gateway (embedded dev issuer; plugins: sql-guardrail, pii-mask, audit-jsonl)"
for p in sql-guardrail pii-mask audit-jsonl; do cp "target/plugins/$p.wasm" "$demo/plugins/"; done
sed -e "s/@PG_PORT@/$pg_port/; s/@GW_PORT@/$gw_port/; s/@ADMIN_PORT@/$admin_port/" \
  examples/demo/sluice.toml > "$demo/sluice.toml"
export APPDB_PASSWORD="$app_password"
(cd "$demo" && exec "$SLUICE_BIN" --config sluice.toml serve) >"$demo/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
  n=$(curl -s "http://127.0.0.1:$admin_port/api/v1/plugins" 2>/dev/null | grep -o '"state":"active"' | wc -l || true)
  [ "$n" -ge 3 ] && break
  sleep 0.1
done
[ "${n:-0}" -ge 3 ] || { cat "$demo/gateway.log" >&2; echo "the gateway did not come up" >&2; exit 1; }

token=$(cd "$demo" && "$SLUICE_BIN" --config sluice.toml token issue --subject agent-1 --group agents --ttl 1h)
conn="host=127.0.0.1 port=$gw_port dbname=appdb user=agent-1 sslmode=require"
agent() {
  step "$1"
  PGPASSWORD="$token" "$psql" -X -w "$conn" -c "$1" 2>&1 || true
}

say "an agent session through the gateway (token as the password, TLS)"
agent "select id, name, plan from customers order by id limit 3"
agent "drop table customers"
agent "delete from customers"
agent "select name, email, phone, card, notes from customers order by id limit 3"

say "the recorded session, as the audit-jsonl sink received it ($demo/audit/events.jsonl)"
sleep 1.5
python3 examples/demo/show-events.py < "$demo/audit/events.jsonl" || true
step "sluice audit verify"
(cd "$demo" && "$SLUICE_BIN" --config sluice.toml audit verify) || true

say "the session recordings (state/sessions/), replayed"
sluice_demo() { (cd "$demo" && "$SLUICE_BIN" --config sluice.toml "$@"); }
step "sluice sessions list --subject agent-1"
sluice_demo sessions list --subject agent-1 || true
for id in $(sluice_demo sessions list --subject agent-1 --json 2>/dev/null |
  python3 -c 'import json, sys; [print(json.loads(l)["id"]) for l in sys.stdin]'); do
  step "sluice sessions replay ${id:0:12}"
  sluice_demo sessions replay "$id" || true
done

say "try it yourself"
cat <<EOF2
  PGPASSWORD='$token' \\
    psql "$conn"

  Admin API: http://127.0.0.1:$admin_port/api/v1/plugins   Gateway log: $demo/gateway.log
EOF2
if [ "$wait_at_end" = 1 ]; then
  echo "  (Ctrl-C stops the gateway and the database)"
  wait "${pids[1]}"
fi
