-- Server-side hardening for pgmesh readers: closes on PostgreSQL what the pooler's claim
-- tampering guard (policy/guard.c) cannot see, i.e. SQL built and run on the server (functions,
-- DO blocks, rules), so a reader cannot change the JWT claims RLS policies read, or its role or
-- limits, behind pgmesh's back; and what the tenants sharing the reader role would otherwise see
-- of each other's sessions (query texts, prepared statements) or do to them (cancel, terminate).
-- docs/security.md says which side covers what.
--
-- Run as a superuser (set_config and plpgsql belong to the bootstrap superuser; role attributes
-- need one), connected to the database itself: privileges on functions, languages and schemas
-- live in each database's own catalogs. Run it in every database readers reach (and in template1
-- for databases made later), once per reader role:
--   psql -d media_analytics -v reader_role=marketing_domain_role -v database=media_analytics \
--        -f sql/hardening.sql
-- One transaction: all of it applies or none. Running it again changes nothing.
--
-- Database-wide effects (the REVOKE ... FROM PUBLIC lines): every role without its own grant
-- loses set_config, DO blocks and plpgsql functions, temporary tables, pg_stat_activity (and the
-- views built on it), pg_cancel_backend, pg_terminate_backend and pg_prepared_statements; members
-- of pg_read_all_stats, pg_monitor and pg_signal_backend too, since those roles work through the
-- same functions. Superusers keep everything. Grant back to roles that need them and are not
-- readers, e.g. a role that runs pg_dump (which calls set_config) or a monitoring role:
--   GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO backup_role;
--   GRANT USAGE ON LANGUAGE plpgsql TO app_owner;
--   GRANT TEMPORARY ON DATABASE media_analytics TO etl_role;
--   GRANT SELECT ON pg_catalog.pg_stat_activity TO monitoring_role;
--   GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) TO monitoring_role;
-- pg_stat_activity lists the backends of every database in the cluster, whichever database it is
-- read in: run the script in every database the reader role may connect to (CONNECT is granted
-- to PUBLIC by default, e.g. on postgres), or revoke CONNECT there.
-- A reader still inherits whatever roles it is a member of hold: keep readers out of such roles.

\set ON_ERROR_STOP on

\if :{?reader_role}
\else
  DO $$ BEGIN RAISE EXCEPTION 'hardening.sql: pass -v reader_role=...'; END $$;
\endif
\if :{?database}
\else
  DO $$ BEGIN RAISE EXCEPTION 'hardening.sql: pass -v database=...'; END $$;
\endif
SELECT current_database() = :'database' AS hardening_in_database \gset
\if :hardening_in_database
\else
  DO $$ BEGIN RAISE EXCEPTION 'hardening.sql: connect to the database named by -v database'; END $$;
\endif

BEGIN;

-- set_config(name, value, is_local) is SET as a function: it takes a computed name, so it can be
-- called from places the guard cannot read (dynamic SQL, function bodies, views, rules) and with
-- names the guard cannot know in advance. Revoking it also closes UPDATE pg_settings, whose rule
-- calls set_config with the caller's privileges. SET itself is a command, not a function: pgmesh's
-- own SET statements and current_setting() keep working. PostgreSQL has no privilege for SET of a
-- placeholder like request.jwt.claim.tenant; refusing SET from clients is the guard's job.
REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM :"reader_role";

-- DO blocks and plpgsql functions run SQL built at run time (EXECUTE 'SET ...'), invisible to the
-- guard, which sees only a string. Without USAGE the reader can neither run DO nor create plpgsql
-- functions.
REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
REVOKE USAGE ON LANGUAGE plpgsql FROM :"reader_role";

-- Temporary objects: pg_temp is a schema every role with TEMPORARY may create in, so a reader
-- could create a function there with "SET request.jwt.claim.tenant = ..." or a body that runs
-- SET, or a temporary table or view that shadows a table name in its search_path. Temporary
-- objects also outlive a transaction on a pooled server connection. The sample mesh grants
-- TEMPORARY to the reader directly, so both grants go.
REVOKE TEMPORARY ON DATABASE :"database" FROM PUBLIC;
REVOKE TEMPORARY ON DATABASE :"database" FROM :"reader_role";

-- Creating in public: the same functions-with-SET and name shadowing, in a schema every session
-- searches. (PostgreSQL 15 no longer grants this to PUBLIC; older clusters and upgraded ones do.)
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM :"reader_role";

-- Other backends of the same role. Every tenant of a domain logs in as this one role, and
-- PostgreSQL shows a backend's query text to, and lets pg_cancel_backend and pg_terminate_backend
-- signal it from, any session of the same role: tenant FR would read tenant DE's statements,
-- literals included, in pg_stat_activity (also through pg_stat_get_activity and
-- pg_stat_get_backend_activity, which the view only wraps), cancel DE's queries and end the server
-- connection DE is using. pgmesh needs none of them: it cancels a client's query with a
-- CancelRequest carrying the backend's secret key (libpq's PQcancel), which no privilege governs.
-- Also gone for the reader: pg_stat_ssl, pg_stat_gssapi and pg_stat_replication, which call
-- pg_stat_get_activity as the caller.
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM :"reader_role";
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM :"reader_role";
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_backend_activity(integer) FROM :"reader_role";
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM :"reader_role";
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM :"reader_role";

-- Statements prepared on a pooled server connection. pg_prepared_statements shows only this
-- session's statements, but in transaction pooling a session is a server connection that clients
-- take turns on, and pgmesh keeps the named statements clients prepare there (under its own
-- names) for the next client that prepares the same text: the next tenant would read them, with
-- their literals. Closes the listing only; docs/security.md says what is left. psql's tab
-- completion after EXECUTE and DEALLOCATE reads this view and lists nothing without it.
REVOKE SELECT ON pg_catalog.pg_prepared_statements FROM PUBLIC;
REVOKE SELECT ON pg_catalog.pg_prepared_statements FROM :"reader_role";
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_prepared_statement() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_prepared_statement() FROM :"reader_role";

-- Role attributes that would make the claims irrelevant (SUPERUSER and BYPASSRLS skip RLS) or let
-- the reader make itself another role or database where the rules above do not hold.
ALTER ROLE :"reader_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

-- Defaults that agree with pgmesh and cannot undo it. standard_conforming_strings = on is what
-- the guard's lexer assumes; a database or cluster default of off would let '...\'...' hide a
-- statement from it. row_security = on is the default; off would turn RLS filtering into errors
-- rather than leaks, but say it anyway so nobody sets it off for this role by accident.
-- statement_timeout, work_mem and idle_in_transaction_session_timeout are not set here: pgmesh
-- sets them per transaction from its [roles] section.
ALTER ROLE :"reader_role" SET standard_conforming_strings = on;
ALTER ROLE :"reader_role" SET row_security = on;

COMMIT;
