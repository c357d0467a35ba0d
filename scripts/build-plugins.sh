#!/usr/bin/env bash
# Builds every plugin (plugins/*) and test guest (tests/guests/*) as a
# wasm32-wasip2 component and copies each to target/plugins/<crate-name>.wasm.
#
# The one implementation of this step: `just build-plugins` runs it, and so
# does tests/build.rs (the `sluice-tests` build script), which is why it
# scrubs the environment a build script inherits. The crate list is the
# directory listing: each directory holds one crate of the same name.
#
# Flags for the wasm build go in CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS;
# RUSTFLAGS is dropped because it is usually meant for the host.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=wasm32-wasip2
profile=wasm
# A target dir of its own: run from a build script, this cargo must not wait
# for the lock the outer build holds on target/.
target_dir="$root/target/wasm"
out_dir="$root/target/plugins"
cargo="${CARGO:-cargo}"

# What a build script's environment would leak into the nested build: the
# outer target's cfgs and features (read by dependencies' build scripts), its
# flags, its target, and wrappers such as clippy-driver under `cargo clippy`.
# CARGO, RUSTC and CARGO_MAKEFLAGS stay: same toolchain, shared jobserver.
for var in $(compgen -e); do
    case "$var" in
        CARGO_CFG_* | CARGO_FEATURE_* | CARGO_PKG_* | DEP_* | __CARGO_*) unset "$var" ;;
    esac
done
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTDOCFLAGS CARGO_ENCODED_RUSTDOCFLAGS \
    CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_BUILD_TARGET_DIR RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS \
    TARGET HOST OUT_DIR OPT_LEVEL PROFILE DEBUG NUM_JOBS RUSTC_LINKER CARGO_MANIFEST_DIR \
    CARGO_MANIFEST_PATH CARGO_MANIFEST_LINKS CARGO_CRATE_NAME CARGO_PRIMARY_PACKAGE CARGO_RUSTC_CURRENT_DIR

sysroot="$("${RUSTC:-rustc}" --print sysroot)"
if [ ! -d "$sysroot/lib/rustlib/$target" ]; then
    echo "error: the $target target is not installed for $sysroot;" \
        "run \`rustup target add $target\`" >&2
    exit 1
fi

packages=()
artifacts=()
for manifest in "$root"/plugins/*/Cargo.toml "$root"/tests/guests/*/Cargo.toml; do
    [ -f "$manifest" ] || continue
    dir="$(dirname "$manifest")"
    name="$(basename "$dir")"
    if ! grep -qx "name = \"$name\"" "$manifest"; then
        echo "error: $manifest must name its package \"$name\" after its directory" >&2
        exit 1
    fi
    packages+=(-p "$name")
    # A library (cdylib) artifact is named after the crate, `-` becoming `_`;
    # a binary keeps the package name.
    if [ -f "$dir/src/lib.rs" ]; then artifacts+=("${name//-/_}:$name"); else artifacts+=("$name:$name"); fi
done

"$cargo" build --manifest-path "$root/Cargo.toml" --profile "$profile" --target "$target" \
    --target-dir "$target_dir" "${packages[@]}"

mkdir -p "$out_dir"
for entry in "${artifacts[@]}"; do
    built="$target_dir/$target/$profile/${entry%%:*}.wasm"
    dest="$out_dir/${entry#*:}.wasm"
    # Copy only what changed, and atomically: tests watch this directory for
    # hot reloads and must never see a half-written component.
    if ! cmp -s "$built" "$dest"; then
        cp "$built" "$dest.tmp.$$"
        mv -f "$dest.tmp.$$" "$dest"
    fi
done
echo "components in $out_dir" >&2
