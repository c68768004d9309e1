#!/usr/bin/env bash
# pgJDBC (Debian's libpostgresql-jdbc-java) through pgmesh in transaction pooling, DE and FR
# connections taking turns on one server connection, with the driver's default prepareThreshold:
# each PreparedStatement runs 20 times (autocommit, then explicit transactions) and goes over to a
# named server statement on its 5th; getMetaData before execution; batch inserts (autocommit and
# in a transaction) whose rows carry the inserting tenant. tests/clients/java/JdbcMatrix.java
# checks the rows each tenant gets; this script checks the inserted rows as superuser too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../clients/common.sh"

JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}
[ -f "$JDBC_JAR" ] || fail "$JDBC_JAR is missing (make deps installs libpostgresql-jdbc-java)"
command -v javac > /dev/null || fail "javac is missing (make deps installs openjdk-17-jdk-headless)"
timeout -k 5 60 javac -d "$TEST_DIR/classes" -cp "$JDBC_JAR" "$CLIENTS_DIR/java/JdbcMatrix.java" \
    || fail "javac JdbcMatrix.java"

pg_psql -c "DELETE FROM core.scratch WHERE note LIKE 'jdbc-batch %'"
clients_start
clients_run jdbc 45 java -cp "$TEST_DIR/classes:$JDBC_JAR" JdbcMatrix
assert_eq $'DE|20\nFR|20' \
    "$(pg_psql -c "SELECT country_code, count(*) FROM core.scratch WHERE note LIKE 'jdbc-batch %' GROUP BY 1 ORDER BY 1")" \
    "batch-inserted rows by tenant"
assert_eq "0" \
    "$(pg_psql -c "SELECT count(*) FROM core.scratch WHERE note LIKE 'jdbc-batch %' AND note NOT LIKE 'jdbc-batch ' || country_code || ' %'")" \
    "batch-inserted rows stamped with another tenant"
mesh_stop
