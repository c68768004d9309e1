// pgJDBC (Debian's libpostgresql-jdbc-java) through pgmesh, compiled and run by
// tests/integration/test_client_jdbc.sh. Two connections, tenants DE and FR, take turns transaction
// by transaction on pgmesh's one server connection, with the driver's defaults (prepareThreshold 5:
// from the 5th execution on, a statement runs as a named server statement S_1, S_2...; the two
// tenants name different queries S_1). Every result must be the tenant's own rows. Exits 1 with
// the first mismatch; prints "jdbc: ok" last when everything held.
// Environment: see tests/clients/common.sh (PG* for the connection, TOKEN_*, SESSIONS_*, CAMPAIGNS_*).

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.postgresql.PGStatement;

public final class JdbcMatrix {
    static final String NAME = "jdbc";
    static final String[] TENANTS = {"DE", "FR"};
    static final int EXECUTIONS = 20;
    static final int BATCH = 10;
    // Each row also carries the claim the server saw, the bound parameter (so a statement bound with
    // another client's values shows) and the server connection's pid (to show it was shared).
    static final Map<String, String> QUERIES = new LinkedHashMap<>();
    static {
        QUERIES.put("sessions", "SELECT session_id, country_code, current_setting('request.jwt.claim.tenant'), ?::int, pg_backend_pid()"
                + " FROM core.fct_playback_sessions ORDER BY session_id");
        QUERIES.put("campaigns", "SELECT campaign_id, country_code, current_setting('request.jwt.claim.tenant'), ?::int, pg_backend_pid()"
                + " FROM marketing.stg_local_campaigns ORDER BY campaign_id");
    }

    static final class Mismatch extends Exception {
        Mismatch(String message) {
            super(message);
        }
    }

    static final Map<String, Set<Integer>> pids = new LinkedHashMap<>();

    static String env(String name) throws Mismatch {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) throw new Mismatch("environment variable " + name + " is not set");
        return v;
    }

    static List<Long> expectedIds(String tenant, String table) throws Mismatch {
        List<Long> ids = new ArrayList<>();
        for (String s : env(table.toUpperCase() + "_" + tenant).split(",")) ids.add(Long.parseLong(s));
        return ids;
    }

    static Connection connect(String tenant) throws SQLException, Mismatch {
        String url = "jdbc:postgresql://" + env("PGHOST") + ":" + env("PGPORT") + "/" + env("PGDATABASE");
        Properties p = new Properties();
        p.setProperty("user", env("PGUSER"));
        p.setProperty("password", env("TOKEN_" + tenant));
        p.setProperty("sslmode", env("PGSSLMODE"));
        p.setProperty("ApplicationName", "pgmesh-jdbc-matrix");
        return DriverManager.getConnection(url, p);
    }

    // Runs ps with tag bound and checks its rows are exactly tenant's.
    static void runAndCheck(PreparedStatement ps, String tenant, String table, int tag, boolean unspecified, String what)
            throws SQLException, Mismatch {
        if (unspecified) {
            // Sent with no parameter type (oid 0), so the driver asks the server to describe the
            // named statement before it binds.
            ps.setObject(1, Integer.toString(tag), Types.OTHER);
        } else {
            ps.setInt(1, tag);
        }
        List<Long> ids = new ArrayList<>();
        try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                ids.add(rs.getLong(1));
                if (!tenant.equals(rs.getString(2)) || !tenant.equals(rs.getString(3)) || rs.getInt(4) != tag) {
                    throw new Mismatch(tenant + " " + what + ": expected country_code, claim " + tenant + " and parameter " + tag
                            + ", got " + rs.getString(2) + ", " + rs.getString(3) + ", " + rs.getInt(4));
                }
                pids.get(tenant).add(rs.getInt(5));
            }
        }
        if (!ids.equals(expectedIds(tenant, table))) {
            throw new Mismatch(tenant + " " + what + ": expected " + table + " ids " + expectedIds(tenant, table) + ", got " + ids);
        }
    }

    static void expectMetadata(PreparedStatement ps, String tenant) throws SQLException, Mismatch {
        ResultSetMetaData md = ps.getMetaData();
        String got = md.getColumnCount() + ":" + md.getColumnName(1) + "/" + md.getColumnTypeName(1) + ","
                + md.getColumnName(2) + "/" + md.getColumnTypeName(2);
        if (!got.equals("5:campaign_id/int4,country_code/text")) {
            throw new Mismatch(tenant + " getMetaData before execution: expected 5:campaign_id/int4,country_code/text, got " + got);
        }
        ParameterMetaData pmd = ps.getParameterMetaData();
        if (pmd.getParameterCount() != 1 || pmd.getParameterType(1) != Types.INTEGER) {
            throw new Mismatch(tenant + " getParameterMetaData: expected one integer parameter, got " + pmd.getParameterCount()
                    + " of type " + (pmd.getParameterCount() > 0 ? pmd.getParameterTypeName(1) : "-"));
        }
    }

    // A prepared statement and the table its rows come from.
    static final class Query {
        final PreparedStatement ps;
        final String table;

        Query(Connection c, String table) throws SQLException {
            this.ps = c.prepareStatement(QUERIES.get(table));
            this.table = table;
        }
    }

    static void preparedStatements(Map<String, Connection> conns) throws SQLException, Mismatch {
        Map<String, List<Query>> queries = new LinkedHashMap<>();
        for (String t : TENANTS) {
            Connection c = conns.get(t);
            Query sessions = new Query(c, "sessions");
            Query campaigns = new Query(c, "campaigns");
            expectMetadata(campaigns.ps, t);
            // DE reaches the threshold with sessions first, FR with campaigns: each names its own
            // query S_1, on the same server connection.
            queries.put(t, t.equals("DE") ? List.of(sessions, campaigns) : List.of(campaigns, sessions));
        }
        for (int i = 0; i < EXECUTIONS; i++) {
            // The first half in autocommit, the second in explicit transactions.
            boolean explicit = i >= EXECUTIONS / 2;
            for (String t : TENANTS) {
                Connection c = conns.get(t);
                c.setAutoCommit(!explicit);
                int tag = i * 10;
                for (Query q : queries.get(t)) {
                    String what = q.table + (explicit ? ", explicit transaction " : ", autocommit execution ") + (i + 1);
                    runAndCheck(q.ps, t, q.table, ++tag, q.table.equals("campaigns"), what);
                }
                if (explicit) c.commit();
            }
        }
        for (String t : TENANTS) {
            for (Query q : queries.get(t)) {
                if (!q.ps.unwrap(PGStatement.class).isUseServerPrepare()) {
                    throw new Mismatch(t + " " + q.table + ": after " + EXECUTIONS
                            + " executions the driver still does not use a named server statement");
                }
                q.ps.close();
            }
            conns.get(t).setAutoCommit(true);
        }
    }

    // Inserts BATCH rows per executeBatch into core.scratch, whose country_code defaults to the tenant
    // claim and whose policy refuses any other: once in autocommit, once in an explicit transaction.
    static void batchInserts(Map<String, Connection> conns) throws SQLException, Mismatch {
        for (int round = 0; round < 2; round++) {
            for (String t : TENANTS) {
                Connection c = conns.get(t);
                c.setAutoCommit(round == 0);
                try (PreparedStatement ins = c.prepareStatement("INSERT INTO core.scratch (note) VALUES (?)")) {
                    for (int n = 0; n < BATCH; n++) {
                        ins.setString(1, "jdbc-batch " + t + " " + round + " " + n);
                        ins.addBatch();
                    }
                    int[] counts = ins.executeBatch();
                    for (int n = 0; n < counts.length; n++) {
                        if (counts[n] != 1 && counts[n] != java.sql.Statement.SUCCESS_NO_INFO) {
                            throw new Mismatch(t + " batch " + (round + 1) + ": row " + n + " update count " + counts[n]);
                        }
                    }
                    if (counts.length != BATCH) {
                        throw new Mismatch(t + " batch " + (round + 1) + ": " + counts.length + " update counts");
                    }
                }
                if (round == 1) c.commit();
                c.setAutoCommit(true);
            }
        }
        // Through RLS each tenant sees its own rows only, all stamped with its claim.
        for (String t : TENANTS) {
            try (PreparedStatement q = conns.get(t).prepareStatement("SELECT count(*),"
                    + " count(*) FILTER (WHERE country_code = ? AND note LIKE 'jdbc-batch ' || ? || ' %')"
                    + " FROM core.scratch WHERE note LIKE 'jdbc-batch %'")) {
                q.setString(1, t);
                q.setString(2, t);
                try (ResultSet rs = q.executeQuery()) {
                    rs.next();
                    if (rs.getLong(1) != 2 * BATCH || rs.getLong(2) != 2 * BATCH) {
                        throw new Mismatch(t + " after the batches: expected " + 2 * BATCH + " own rows, sees " + rs.getLong(1)
                                + " of which " + rs.getLong(2) + " its own");
                    }
                }
            }
        }
    }

    public static void main(String[] args) {
        Map<String, Connection> conns = new LinkedHashMap<>();
        try {
            for (String t : TENANTS) {
                pids.put(t, new HashSet<>());
                conns.put(t, connect(t));
            }
            preparedStatements(conns);
            System.out.println(NAME + ": one PreparedStatement per query, " + EXECUTIONS + " executions per tenant: right rows");
            batchInserts(conns);
            System.out.println(NAME + ": batch inserts, autocommit and explicit: right rows");
            Set<Integer> shared = new HashSet<>(pids.get("DE"));
            shared.retainAll(pids.get("FR"));
            if ("1".equals(System.getenv("EXPECT_SHARED_SERVER")) && shared.isEmpty()) {
                throw new Mismatch("DE and FR never shared a server connection (pids DE " + pids.get("DE")
                        + ", FR " + pids.get("FR") + ")");
            }
            System.out.println(NAME + ": server connections DE " + pids.get("DE") + ", FR " + pids.get("FR"));
            System.out.println(NAME + ": ok");
        } catch (Mismatch e) {
            System.out.println(NAME + ": FAIL: " + e.getMessage());
            System.exit(1);
        } catch (SQLException e) {
            System.out.println(NAME + ": FAIL: " + e.getClass().getSimpleName() + " " + e.getSQLState() + ": " + e.getMessage());
            System.exit(1);
        } finally {
            for (Connection c : conns.values()) {
                try {
                    c.close();
                } catch (SQLException ignored) {
                    // closing after a failure: the failure is what gets reported
                }
            }
        }
    }
}
