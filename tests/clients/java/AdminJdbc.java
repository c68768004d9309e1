import java.sql.*;
import java.util.Properties;

/* The admin console through pgJDBC: a PreparedStatement run past prepareThreshold (server-side
 * statement; int8 columns fetched in binary), getLong on numbers, and a plain Statement. */
public class AdminJdbc {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("MESH_PORT") + "/pgmesh?sslmode=disable";
        Properties p = new Properties();
        p.setProperty("user", "admin");
        p.setProperty("password", System.getenv("ADMIN_TOKEN"));
        try (Connection c = DriverManager.getConnection(url, p)) {
            try (PreparedStatement ps = c.prepareStatement("SHOW POOLS")) {
                for (int i = 0; i < 8; i++) {
                    try (ResultSet rs = ps.executeQuery()) {
                        if (!rs.next()) throw new AssertionError("SHOW POOLS returned no row");
                        long size = rs.getLong("pool_size");
                        String db = rs.getString("database");
                        if (i == 7) System.out.println("pools: " + db + " pool_size=" + size + " type=" + rs.getMetaData().getColumnTypeName(3));
                    }
                }
            }
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SHOW VERSION")) {
                rs.next();
                System.out.println("version: " + rs.getString(1));
            }
        }
        System.out.println("admin_jdbc: ok");
    }
}
