"""psycopg 3 through the gateway: run by gateway/tests/pg_clients.rs.

Environment: MASKED and PLAIN are libpq conninfo strings for a connection
with a guardrail (denies "drop") and an email masker, and for one with only
the guardrail; PGPASSWORD holds the agent's token. Every check raises on
failure; the last line printed is "psycopg: all checks passed".
"""
import os
import socket
import ssl
import threading
import time

import psycopg
from psycopg import errors

MASKED = os.environ["MASKED"]
PLAIN = os.environ["PLAIN"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def main():
    with psycopg.connect(PLAIN, sslmode="require", autocommit=True) as conn:
        check(conn.info.parameter_status("server_version") is not None, "TLS connect with a token")
        conn.execute("create table items(id serial primary key, owner text, email text)")
        # Extended protocol with parameters; text and binary parameters.
        conn.execute("insert into items(owner, email) values (%s, %s)", ("ada", "ada@example.com"))
        conn.execute("insert into items(owner, email) values (%b, %b)", ("bob", "bob@example.com"))
        # Server-side prepared statements, reused.
        for i in range(5):
            conn.execute("insert into items(owner, email) values (%s, %s)", (f"p{i}", None), prepare=True)
        n = conn.execute("select count(*) from items where owner like %s", ("p%",), prepare=True).fetchone()[0]
        check(n == 5, "prepared statements executed and reused")

        # Transactions: commit, rollback.
        with conn.transaction():
            conn.execute("insert into items(owner) values ('committed')")
        try:
            with conn.transaction():
                conn.execute("insert into items(owner) values ('rolled back')")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        owners = [r[0] for r in conn.execute("select owner from items where owner in ('committed', 'rolled back')")]
        check(owners == ["committed"], "commit and rollback")

        # COPY in and out.
        with conn.cursor() as cur:
            with cur.copy("copy items(owner, email) from stdin") as copy:
                for i in range(100):
                    copy.write_row((f"copy{i}", f"copy{i}@example.org"))
            check(cur.execute("select count(*) from items where owner like 'copy%'").fetchone()[0] == 100, "COPY FROM STDIN")
            with cur.copy("copy (select owner from items where owner like 'copy%' order by id) to stdout") as copy:
                got = [row[0] for row in copy.rows()]
            check(len(got) == 100 and got[0] == "copy0", "COPY TO STDOUT on a connection without a masker")

        # Guardrail: one message with an allowed and a denied statement is refused whole.
        try:
            conn.execute("select 1; drop table items")
            raise AssertionError("the drop was not refused")
        except errors.InsufficientPrivilege as e:
            check("deny-word" in str(e), f"multi-statement drop refused: {e}")
        check(conn.execute("select count(*) from items").fetchone()[0] > 0, "table intact, session usable")

        # A bound value is checked too, in text (%s) and binary (%b) format;
        # the session goes on.
        for placeholder in ("%s", "%b"):
            try:
                conn.execute(f"select {placeholder}::text", ["please drop it"])
                raise AssertionError(f"a denied word in a {placeholder} parameter was not refused")
            except errors.InsufficientPrivilege as e:
                check("bound parameter" in str(e), f"{placeholder} parameter refused: {e}")
            got = conn.execute(f"select {placeholder}::text", ["fine"]).fetchone()[0]
            check(got == "fine", f"{placeholder} parameter allowed after a refusal")

        # The same through Parse/Bind/Execute, inside a transaction.
        conn.autocommit = False
        conn.execute("select 1")
        try:
            conn.execute("drop table items", prepare=True)
        except errors.InsufficientPrivilege:
            pass
        check(conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR, "failed-transaction state after a refusal")
        try:
            conn.execute("select 1")
            raise AssertionError("a statement ran in an aborted transaction")
        except errors.InFailedSqlTransaction:
            pass
        conn.rollback()
        check(conn.execute("select 2").fetchone()[0] == 2, "rollback recovers")
        conn.rollback()
        conn.autocommit = True

        # Cancel a running query from another thread: libpq's classic
        # PQcancel, and libpq 17's cancel over TLS (cancel_safe), which
        # reports a close without TLS close_notify as a failed cancel.
        for how, cancel in [
            ("cancel", conn.cancel),
            ("cancel_safe over TLS", lambda: conn.cancel_safe(timeout=5)),
        ]:
            failures = []

            def cancel_soon():
                time.sleep(1.0)
                try:
                    cancel()
                except Exception as e:  # noqa: BLE001 - reported below
                    failures.append(e)

            t = threading.Thread(target=cancel_soon)
            t.start()
            started = time.monotonic()
            try:
                conn.execute("select pg_sleep(10)")
                raise AssertionError(f"pg_sleep was not cancelled by {how}")
            except errors.QueryCanceled:
                pass
            t.join()
            check(not failures and time.monotonic() - started < 8, f"{how} of pg_sleep(10): {failures}")

        # LISTEN / NOTIFY between two sessions.
        conn.execute("listen jobs")
        with psycopg.connect(PLAIN, sslmode="require", autocommit=True) as other:
            other.execute("notify jobs, 'hello'")
        got = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
        check(got == ["hello"], "LISTEN/NOTIFY")

    with psycopg.connect(MASKED, sslmode="require", autocommit=True) as conn:
        row = conn.execute("select owner, email from items where owner = %s", ("ada",)).fetchone()
        check(row == ("ada", "[EMAIL]"), f"text result masked: {row}")
        with conn.cursor(binary=True) as cur:
            row = cur.execute("select owner, email, jsonb_build_object('to', email) from items where owner = 'bob'").fetchone()
        check(row[1] == "[EMAIL]" and row[2] == {"to": "[EMAIL]"}, f"binary result masked: {row}")
        try:
            with conn.cursor() as cur:
                with cur.copy("copy items to stdout") as copy:
                    leaked = list(copy.rows())
            raise AssertionError(f"COPY TO STDOUT was relayed unmasked: {leaked[:2]}")
        except psycopg.Error as e:
            check("COPY" in str(e), f"COPY TO STDOUT refused where masking applies: {e}")
        check(conn.execute("select 'still here'").fetchone()[0] == "still here", "session usable after the refusal")

    # libpq 17 and later can begin with TLS at once, without SSLRequest
    # (the pinned psycopg wheel carries libpq 18).
    check(psycopg.pq.version() >= 170000, f"libpq {psycopg.pq.version()} knows sslnegotiation")
    with psycopg.connect(MASKED, sslmode="require", sslnegotiation="direct", autocommit=True) as conn:
        row = conn.execute("select owner, email from items where owner = %s", ("ada",)).fetchone()
        check(row == ("ada", "[EMAIL]"), f"direct TLS negotiation: {row}")
    check_direct_tls_needs_alpn()

    print("psycopg: all checks passed", flush=True)


def check_direct_tls_needs_alpn():
    """A direct TLS client that does not name "postgresql" with ALPN is
    told so, over TLS, as PostgreSQL 17 does."""
    host, port = conninfo_address(MASKED)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            reply = b""
            while chunk := tls.recv(4096):
                reply += chunk
    check(reply[:1] == b"E" and b"08P01" in reply and b"ALPN" in reply,
          f"direct TLS without ALPN refused: {reply!r}")


def conninfo_address(conninfo):
    fields = dict(part.split("=", 1) for part in conninfo.split())
    return fields["host"], int(fields["port"])


if __name__ == "__main__":
    main()
