#!/usr/bin/env bash
# Entry point for a fresh machine: installs what the Justfile needs (the
# wasm32-wasip2 Rust target and `just`), then runs a Justfile recipe.
#   scripts/dev.sh test       build everything, run every test suite
#   scripts/dev.sh <recipe>   any other recipe (`scripts/dev.sh --list`)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "==> installing the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2
fi

if ! command -v just >/dev/null 2>&1; then
  echo "==> installing just" >&2
  if command -v pip3 >/dev/null 2>&1 && pip3 install --quiet rust-just 2>/dev/null && command -v just >/dev/null 2>&1; then
    :
  else
    cargo install just --locked --quiet
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
hash -r
exec just "$@"
