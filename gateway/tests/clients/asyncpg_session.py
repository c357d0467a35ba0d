"""asyncpg through the gateway: run by gateway/tests/pg_clients.rs.

asyncpg speaks the protocol itself (no libpq): it prepares with Parse,
Describe and Flush, without Sync, then may send a simple Query; it runs
prepared statements with Bind and Execute, without describing the portal;
it sends binary parameters; copy_records_to_table prepares, then COPYs in
binary. Environment: PORT, PGPASSWORD (the agent's token); the connection
`appdb` has a guardrail that denies "drop" and an email masker. The last
line printed is "asyncpg: all checks passed".
"""
import asyncio
import os

import asyncpg


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


async def main():
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        user="agent-1",
        password=os.environ["PGPASSWORD"],
        database="appdb",
        ssl="require",
    )
    await conn.execute("create table people(id int primary key, name text, email text)")
    by_id = await conn.prepare("select email, id from people where id = $1")
    # A simple Query right after a prepare (Parse, Describe, Flush).
    await conn.execute("insert into people values (1, 'Ada', 'ada@example.com')")
    rows = await by_id.fetch(1)
    check(rows[0]["email"] == "[EMAIL]", "masked through a prepared statement")
    numbers = await conn.prepare("select id, 'x'::text as t from people where id = $1")
    check((await numbers.fetchrow(1))["id"] == 1, "a second prepared statement")
    rows = await by_id.fetch(1)
    check(rows[0]["email"] == "[EMAIL]", "masked by its own columns, not the last described")

    await conn.copy_records_to_table(
        "people",
        records=[(2, "Bob", "bob@example.com"), (3, "Cy", None)],
        columns=["id", "name", "email"],
    )
    check(await conn.fetchval("select count(*) from people") == 3, "copy_records_to_table")

    try:
        await conn.fetch("select $1::text", "drop")
        raise AssertionError("a denied word in a binary parameter passed")
    except asyncpg.exceptions.InsufficientPrivilegeError as e:
        check("drop" in str(e), "a denied word in a binary parameter is refused")

    async with conn.transaction():
        await conn.execute("insert into people values (4, 'Di', 'di@example.org')")
    emails = [r["email"] for r in await conn.fetch("select email from people order by id")]
    check(emails == ["[EMAIL]", "[EMAIL]", None, "[EMAIL]"], "results masked after COPY and a transaction")
    check(await conn.fetchval("select 1") == 1, "the session goes on")
    await conn.close()
    print("asyncpg: all checks passed", flush=True)


asyncio.run(main())
