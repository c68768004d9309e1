"""The admin console through psycopg 3, which speaks the extended protocol (Parse, Bind,
Describe, Execute, Sync). Usage: admin.py DSN COMMAND [prepare|binary]. Prints each row as
"column=value" pairs joined by " | ", with Python's repr of each value, so that an int8 column
reads cl_waiting=1 and a text one database='media_analytics'; an error prints
"ERROR <sqlstate> <message>" and exits 3."""
import sys

import psycopg


def main():
    dsn, command = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else ""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            cur = conn.cursor(binary=mode == "binary")
            cur.execute(command, prepare=mode == "prepare")
        except psycopg.Error as e:
            print(f"ERROR {e.sqlstate} {e.diag.message_primary}")
            return 3
        if cur.description is None:
            print(f"STATUS {cur.statusmessage}")
            return 0
        names = [d.name for d in cur.description]
        for row in cur.fetchall():
            print(" | ".join(f"{n}={v!r}" for n, v in zip(names, row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
