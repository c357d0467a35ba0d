// pgjdbc through the gateway: run by gateway/tests/pg_clients.rs as
// `java -cp postgresql.jar JdbcSession.java` (Debian's
// libpostgresql-jdbc-java).
//
// pgjdbc speaks the protocol itself: statements run a few times become
// named server-side statements with binary results, batches are pipelined
// behind one Sync, fetch sizes suspend portals, Statement.cancel sends a
// CancelRequest on a new connection, and `options` carries settings.
// Environment: PORT, PGPASSWORD (the agent's token); the connection `appdb`
// has a guardrail that denies "drop" and an email masker. The last line
// printed is "jdbc: all checks passed".
import java.io.StringReader;
import java.sql.*;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class JdbcSession {
    interface Body {
        void run() throws Exception;
    }

    static void check(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
        passed(what);
    }

    // What the checks before it established.
    static void passed(String what) {
        System.out.println("ok: " + what);
    }

    static void failsWith(String state, String what, Body body) throws Exception {
        try {
            body.run();
        } catch (SQLException e) {
            check(state.equals(e.getSQLState()), what + " (" + e.getSQLState() + ": " + e.getMessage() + ")");
            return;
        }
        throw new AssertionError(what + ": no error");
    }

    static long count(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select count(*) from people")) {
            r.next();
            return r.getLong(1);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("PORT") + "/appdb"
                + "?sslmode=require&sslfactory=org.postgresql.ssl.NonValidatingFactory"
                + "&options=-c%20statement_timeout%3D500&prepareThreshold=3";
        Properties props = new Properties();
        props.setProperty("user", "agent-1");
        props.setProperty("password", System.getenv("PGPASSWORD"));
        try (Connection c = DriverManager.getConnection(url, props)) {
            Statement st = c.createStatement();
            try (ResultSet r = st.executeQuery("show statement_timeout")) {
                r.next();
                check(r.getString(1).equals("500ms"), "statement_timeout set through options");
            }
            failsWith("57014", "the timeout cancels a long statement", () -> st.execute("select pg_sleep(2)"));
            st.execute("set statement_timeout = 0");

            st.execute("create table people(id int primary key, name text, email text, seen timestamptz)");
            try (PreparedStatement ins = c.prepareStatement("insert into people values (?, ?, ?, ?)")) {
                for (int i = 1; i <= 50; i++) {
                    ins.setInt(1, i);
                    ins.setString(2, "n" + i);
                    ins.setString(3, i % 2 == 0 ? "p" + i + "@example.com" : null);
                    ins.setTimestamp(4, new Timestamp(1700000000000L + i));
                    ins.addBatch();
                }
                int[] done = ins.executeBatch();
                check(done.length == 50, "a batch of 50 inserts");
            }

            // Past prepareThreshold the statement is a named one, with
            // binary results for the int and the timestamp.
            try (PreparedStatement q = c.prepareStatement("select id, email, seen from people where id = ?")) {
                for (int i = 0; i < 10; i++) {
                    q.setInt(1, 2);
                    try (ResultSet r = q.executeQuery()) {
                        r.next();
                        if (r.getInt(1) != 2 || !"[EMAIL]".equals(r.getString(2))
                                || r.getTimestamp(3).getTime() != 1700000000002L) {
                            throw new AssertionError("row " + r.getInt(1) + " " + r.getString(2) + " " + r.getTimestamp(3));
                        }
                    }
                }
                passed("a server-prepared statement, masked each time");
            }

            // A denied statement, alone and inside a transaction.
            failsWith("42501", "DROP is refused", () -> st.execute("drop table people"));
            try (ResultSet r = st.executeQuery("select 1")) {
                check(r.next() && r.getInt(1) == 1, "the session goes on");
            }
            c.setAutoCommit(false);
            st.execute("insert into people values (100, 'x', 'x@example.com', now())");
            failsWith("42501", "DROP is refused inside a transaction", () -> st.execute("drop table people"));
            failsWith("25P02", "the transaction is failed, as the server says", () -> st.executeQuery("select 1"));
            c.rollback();
            check(count(c) == 50, "the rolled-back insert is gone");

            // A fetch size suspends the portal every 7 rows.
            st.setFetchSize(7);
            int rows = 0, masked = 0;
            try (ResultSet r = st.executeQuery("select email from people order by id")) {
                while (r.next()) {
                    rows++;
                    if ("[EMAIL]".equals(r.getString(1))) masked++;
                }
            }
            check(rows == 50 && masked == 25, "rows fetched 7 at a time, masked");
            c.commit();
            c.setAutoCommit(true);

            // Statement.cancel() from another thread.
            Statement sleeper = c.createStatement();
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(500);
                    sleeper.cancel();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            long started = System.nanoTime();
            canceller.start();
            failsWith("57014", "Statement.cancel stops pg_sleep(10)", () -> sleeper.execute("select pg_sleep(10)"));
            canceller.join();
            check((System.nanoTime() - started) / 1_000_000 < 5000, "cancelled within 5 s");

            CopyManager copy = ((PGConnection) c.unwrap(PGConnection.class)).getCopyAPI();
            long copied = copy.copyIn("copy people (id, name, email) from stdin",
                    new StringReader("200\tcy\tcy@example.com\n201\tdi\t\\N\n"));
            check(copied == 2 && count(c) == 52, "CopyManager.copyIn");

            try (ResultSet r = c.getMetaData().getTables(null, "public", "people", null)) {
                check(r.next() && r.getString("TABLE_NAME").equals("people"), "DatabaseMetaData.getTables");
            }
        }
        System.out.println("jdbc: all checks passed");
    }
}
