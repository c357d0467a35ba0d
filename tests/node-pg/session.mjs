// node-postgres through the gateway: run by gateway/tests/pg_clients.rs.
//
// node-postgres speaks the protocol itself (no libpq): parameterised
// queries as unnamed Parse/Bind/Describe/Execute/Sync, named statements
// parsed once then bound, settings such as statement_timeout as startup
// parameters. Environment: PORT, PGPASSWORD (the agent's token); the
// connection `appdb` has a guardrail that denies "drop" and an email
// masker. The last line printed is "node-pg: all checks passed".
import assert from "node:assert/strict";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

const config = {
  host: "127.0.0.1",
  port: Number(process.env.PORT),
  user: "agent-1",
  password: process.env.PGPASSWORD,
  database: "appdb",
  // The gateway's certificate is self-signed for this test run.
  ssl: { rejectUnauthorized: false },
};

function check(cond, what) {
  assert.ok(cond, what);
  passed(what);
}

// What the asserts before it established.
function passed(what) {
  console.log(`ok: ${what}`);
}

async function failsWith(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    check(e.code === code, `${what} (${e.code}: ${e.message})`);
    return e;
  }
  assert.fail(`${what}: no error`);
}

const client = new pg.Client({ ...config, statement_timeout: 500 });
await client.connect();

// A setting asked for at startup holds.
const { rows: timeout } = await client.query("show statement_timeout");
check(timeout[0].statement_timeout === "500ms", "statement_timeout set at startup");
await failsWith(client.query("select pg_sleep(2)"), "57014", "the timeout cancels a long statement");

await client.query("create table people(id int primary key, name text, email text)");
for (const [id, name, email] of [
  [1, "Ada", "ada@example.com"],
  [2, "Bob", null],
]) {
  await client.query("insert into people values ($1, $2, $3)", [id, name, email]);
}

// A named statement: parsed once, then bound and executed each time.
for (let i = 0; i < 20; i++) {
  const { rows } = await client.query({
    name: "by_id",
    text: "select email, id from people where id = $1",
    values: [1],
  });
  assert.equal(rows[0].email, "[EMAIL]");
  assert.equal(rows[0].id, 1);
}
passed("a named statement executed 20 times, masked each time");
const { rows: arrays } = await client.query({
  text: "select name, email from people order by id",
  rowMode: "array",
});
check(
  JSON.stringify(arrays) === JSON.stringify([["Ada", "[EMAIL]"], ["Bob", null]]),
  "rows as arrays, masked",
);

// Parameters and results of many types come back as PostgreSQL gives them.
const values = [
  ["int8", "9007199254740993"],
  ["numeric", "12345.6789"],
  ["bool", true],
  ["jsonb", { a: [1, "x"] }],
  ["bytea", Buffer.from([0, 1, 2, 255])],
  ["timestamptz", new Date("2024-02-29T12:34:56.789Z")],
  ["int4[]", [1, 2, 3]],
  ["text", null],
];
for (const [type, value] of values) {
  const { rows } = await client.query(`select $1::${type} as v`, [value]);
  assert.deepEqual(rows[0].v, value, type);
}
passed("parameters of eight types round-trip");

// A denied statement, alone and inside a transaction.
await failsWith(client.query("drop table people"), "42501", "DROP is refused");
check((await client.query("select 1 as one")).rows[0].one === 1, "the session goes on");
await client.query("begin");
await client.query("insert into people values (3, 'Cy', 'cy@example.com')");
await failsWith(
  client.query({ text: "drop table people", values: [] }),
  "42501",
  "DROP is refused inside a transaction (extended protocol)",
);
await failsWith(client.query("select 1"), "25P02", "the transaction is failed, as the server says");
await client.query("rollback");
const { rows: count } = await client.query("select count(*)::int as n from people");
check(count[0].n === 2, "the rolled-back insert is gone");

// COPY FROM STDIN.
const copy = client.query(copyFrom("copy people (id, name, email) from stdin"));
await pipeline(Readable.from(["10\tDee\tdee@example.com\n", "11\tEve\t\\N\n"]), copy);
const { rows: copied } = await client.query("select email from people where id >= 10 order by id");
check(
  JSON.stringify(copied) === JSON.stringify([{ email: "[EMAIL]" }, { email: null }]),
  "COPY FROM STDIN, then masked reads",
);

// LISTEN/NOTIFY between two sessions.
const listener = new pg.Client(config);
await listener.connect();
await listener.query("listen jobs");
const received = new Promise((resolve) => listener.on("notification", resolve));
await client.query("notify jobs, 'job 7 done'");
const note = await received;
check(note.channel === "jobs" && note.payload === "job 7 done", "LISTEN/NOTIFY");
await listener.end();

// A pool of ten sessions at once.
const pool = new pg.Pool({ ...config, max: 10 });
const sums = await Promise.all(
  Array.from({ length: 40 }, (_, i) =>
    pool.query("select $1::int + count(*)::int as n from people", [i]).then((r) => r.rows[0].n),
  ),
);
check(sums.every((n, i) => n === i + 4), "a pool of ten sessions");
await pool.end();

await client.end();
console.log("node-pg: all checks passed");
