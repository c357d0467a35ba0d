#!/usr/bin/env python3
"""Runs the README's "Write a plugin" section as a new plugin author would.

The code blocks marked `<!-- write-a-plugin: NAME -->` are written to a fresh
crate outside the workspace (next to a `sluice` link to this checkout, as the
README assumes), the build block runs with the freshly built `sluice` on
PATH, then a gateway is started and the install block must make the plugin
active, without restart, as reported by the admin API.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    found = {}
    for m in re.finditer(r"<!-- write-a-plugin: (\S+) -->\s*```\w*\n(.*?)```", text, re.S):
        found[m.group(1)] = m.group(2)
    missing = {"Cargo.toml", "src/lib.rs", "build", "sluice.toml", "install"} - found.keys()
    if missing:
        sys.exit(f"README is missing write-a-plugin blocks: {sorted(missing)}")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(script, cwd, env):
    print(f"$ {script.strip()}", flush=True)
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, check=True)


def main():
    b = blocks()
    target = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)["target_directory"]
    # The binary the test suites built: `cargo build -p sluice` alone would
    # resolve features differently and rebuild wasmtime into a second copy.
    subprocess.run(["cargo", "test", "-q", "--workspace", "--no-run"], cwd=ROOT, check=True)
    env = dict(os.environ, PATH=os.path.join(target, "debug") + os.pathsep + os.environ["PATH"])
    for var in ("CARGO_TARGET_DIR", "RUSTFLAGS", "CARGO_BUILD_TARGET"):
        env.pop(var, None)

    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(ROOT, os.path.join(tmp, "sluice"))
        crate = os.path.join(tmp, "protect-schema")
        os.makedirs(os.path.join(crate, "src"))
        # Keep the plugin's build artefacts between runs.
        cache = os.path.join(target, "readme-plugin")
        os.makedirs(cache, exist_ok=True)
        os.symlink(cache, os.path.join(crate, "target"))
        port = free_port()
        files = {
            "Cargo.toml": b["Cargo.toml"],
            "src/lib.rs": b["src/lib.rs"],
            "sluice.toml": b["sluice.toml"].replace("127.0.0.1:9090", f"127.0.0.1:{port}"),
        }
        for name, body in files.items():
            with open(os.path.join(crate, name), "w") as f:
                f.write(body)

        sh(b["build"], crate, env)

        os.makedirs(os.path.join(crate, "plugins"), exist_ok=True)
        gateway = subprocess.Popen(["sluice", "--config", "sluice.toml", "serve"], cwd=crate, env=env)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/plugins"
            deadline = time.time() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except OSError:
                    if time.time() > deadline or gateway.poll() is not None:
                        sys.exit("the gateway did not become ready")
                    time.sleep(0.1)
            sh(b["install"], crate, env)
            deadline = time.time() + 10
            while True:
                plugins = json.load(urllib.request.urlopen(url, timeout=2))["plugins"]
                active = [p for p in plugins if p["name"] == "protect-schema" and p["state"] == "active"]
                if active:
                    print(f"loaded without restart: {json.dumps(active[0])}")
                    break
                if time.time() > deadline:
                    sys.exit(f"protect-schema never became active: {plugins}")
                time.sleep(0.1)
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)
    print("README 'Write a plugin' steps: ok")


if __name__ == "__main__":
    main()
