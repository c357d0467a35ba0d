# Sluice developer recipes. On a fresh machine run them through
# `scripts/dev.sh RECIPE`, which installs the wasm target and `just` first.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# The gateway (release) and every plugin as a wasm32-wasip2 component in target/plugins/.
build: build-plugins
    cargo build --release -p sluice

# Every crate under plugins/ and tests/guests/ as a component in target/plugins/.
build-plugins:
    scripts/build-plugins.sh

# The quick-start demo: a throwaway PostgreSQL with fake customer data behind
# the gateway, a scripted agent session, then a psql command to try it by hand.
demo:
    scripts/demo.sh

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI runs: lints, every test suite (plugins are built by the test
# crate), then the README's plugin-author walkthrough.
test: lint
    cargo test --workspace
    just readme-plugin

# Follow the README's "Write a plugin" section from an empty directory to a loaded plugin.
readme-plugin:
    python3 scripts/readme-plugin.py

# Plugin call overhead and masking throughput (criterion, release build).
bench-plugins:
    cargo bench -p sluice-tests --bench plugins

# pii-mask throughput: 100,000 rows x 5 text columns through the real host, rows/s (criterion, release build).
bench-pii:
    cargo bench -p sluice-tests --bench pii

# Token validations per second: cached RS256, EdDSA and ES256 tokens (criterion, release build).
bench-identity:
    cargo bench -p sluice --bench identity

# Audit log: write-ahead append latency per fsync policy, queued events/s, 64 concurrent sessions (criterion, release build).
bench-audit:
    cargo bench -p sluice --bench audit

# pgbench -S direct vs PgBouncer vs Sluice (guardrail + masker) vs Sluice's bare relay, simple and prepared, 1 and 8 clients.
bench-pg:
    scripts/bench-pg.sh

# wrk on a small JSON GET: direct vs nginx proxy_pass vs Sluice (guardrail + masker) vs Sluice's bare proxy, with ratios.
bench-http:
    scripts/bench-http.sh

# Check one component the way the gateway would load it.
plugin-check FILE:
    cargo run -q -p sluice -- plugin check {{FILE}}
