"""Prints the demo session's audit events (JSON lines on stdin), one per line."""
import json
import sys

for line in sys.stdin:
    e = json.loads(line)
    if not e.get("session_id"):
        continue
    d = e.get("detail") or {}
    who = (e.get("identity") or {}).get("subject", "-")
    keep = {k: d[k] for k in ("text", "verdict", "rule", "plugin", "rows", "masked", "duration_ms", "error", "client_addr") if k in d}
    print(f"  #{e['sequence']:<4} {e['kind']:<22} {who:<8} {json.dumps(keep)[:140]}")
