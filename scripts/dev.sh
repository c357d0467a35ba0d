#!/usr/bin/env bash
# Entry point for a fresh machine: installs what the recipes need, then runs
# a Justfile recipe.
#   scripts/dev.sh test       build everything, run every test suite
#   scripts/dev.sh <recipe>   any other recipe (`scripts/dev.sh --list`)
#
# Installs, when missing: the wasm32-wasip2 Rust target; `just`; on Debian,
# clang/libclang (the PostgreSQL parser is built with bindgen), curl (the
# HTTP tests drive the gateway with it), the PostgreSQL
# server binaries (tests start their own server), node/npm (the OpenID
# provider the identity tests start) and python3 (the README walkthrough); the
# OpenID provider's and the HAR validator's locked npm dependencies; psycopg
# and asyncpg (tests/requirements.txt), node-postgres (tests/node-pg) and
# pgjdbc with a JDK (the client tests).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "==> $*" >&2; }

if command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in clang libclang-dev python3 curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  # PostgreSQL server binaries (initdb, postgres, psql, pgbench): the data
  # path's tests start their own server.
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  # pgjdbc and a JDK to run its client test.
  [ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
  command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
  fi
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  say "installing the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi

if ! command -v just >/dev/null 2>&1; then
  say "installing just"
  if ! { command -v pip3 >/dev/null 2>&1 && pip3 install --quiet rust-just && hash -r && command -v just >/dev/null 2>&1; }; then
    cargo install just --locked --quiet
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
hash -r

# Client libraries the PostgreSQL tests drive (psycopg, asyncpg). A Debian-managed
# Python refuses plain `pip install`; a pyenv/venv one takes it.
if ! python3 -c 'import psycopg, asyncpg' >/dev/null 2>&1; then
  say "installing the Python test clients (tests/requirements.txt)"
  pip=(python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt)
  "${pip[@]}" 2>/dev/null || "${pip[@]}" --break-system-packages
fi

if [ ! -d tests/oidc-provider/node_modules ] && command -v npm >/dev/null 2>&1; then
  say "installing the test OpenID provider's npm dependencies"
  npm ci --prefix tests/oidc-provider --no-audit --no-fund --loglevel=error
fi

# node-postgres, one of the client libraries the PostgreSQL tests drive.
if [ ! -d tests/node-pg/node_modules ] && command -v npm >/dev/null 2>&1; then
  say "installing node-postgres for the client tests (tests/node-pg)"
  npm ci --prefix tests/node-pg --no-audit --no-fund --loglevel=error
fi

# The HAR 1.2 schema check the HTTP session-recording tests run on exports.
if [ ! -d tests/har-validator/node_modules ] && command -v npm >/dev/null 2>&1; then
  say "installing the HAR validator (tests/har-validator)"
  npm ci --prefix tests/har-validator --no-audit --no-fund --loglevel=error
fi

exec just "$@"
