-- The sample data mesh: one database, media_analytics, with a schema per domain (core,
-- media_consumption, marketing). Rows are isolated per tenant by Row-Level Security policies that
-- read the claims pgmesh sets at the start of every transaction (request.jwt.claim.tenant and
-- request.jwt.claim.role). Drops and recreates the database and the roles, so it can run again.
--
-- Run as a superuser connected to any other database, passing the server roles' passwords:
--   psql -v marketing_password=... -v audit_password=... -v blocked_password=... -f demo/mesh.sql
--
-- Roles (LOGIN; pgmesh connects as them):
--   marketing_domain_role  server role of the regional_analyst token role; sees its tenant's rows
--   audit_role             server role of global_corporate_audit; the policy lets that claim see all
--   blocked_role           may connect but holds no grant at all: every query is 42501
-- Schema marketing belongs to marketing_domain_role, as a data mesh domain's schema belongs to its
-- role: the reader may create functions, views, tables, rules and aggregates there, which is what
-- the pgmesh extension has to hold against (tests/integration/test_enforcement_attacks.sh). Being
-- the schema's owner, it may also drop the superuser's table in it; it cannot read past its RLS.
-- Tables owned by the superuser (so the roles never bypass RLS; FORCE covers the owner too):
--   core.fct_playback_sessions                   DE 3 rows, FR 2, ES 1, IT 1
--   media_consumption.mrt_marketing_weekly_engagement  data product: DE 2 weeks, FR 2, ES 1, IT 1
--   marketing.stg_local_campaigns                DE 2, FR 1, ES 1, IT 1
--   core.scratch      writable (SELECT, INSERT, UPDATE, DELETE) with RLS by tenant; country_code
--                     defaults to the tenant claim; for DML tests. COPY FROM is refused by
--                     PostgreSQL on tables with RLS, so COPY FROM tests use core.role_scratch.
-- Owned by marketing_domain_role, no RLS (for VACUUM, COPY FROM and other owner-only commands):
--   core.role_scratch (id, note); audit_role may SELECT, INSERT, UPDATE, DELETE it too.

\set ON_ERROR_STOP on

\if :{?marketing_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'mesh.sql: pass -v marketing_password=...'; END $$;
\endif
\if :{?audit_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'mesh.sql: pass -v audit_password=...'; END $$;
\endif
\if :{?blocked_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'mesh.sql: pass -v blocked_password=...'; END $$;
\endif

SET client_min_messages = warning;
DROP DATABASE IF EXISTS media_analytics WITH (FORCE);
DROP ROLE IF EXISTS marketing_domain_role;
DROP ROLE IF EXISTS audit_role;
DROP ROLE IF EXISTS blocked_role;

CREATE ROLE marketing_domain_role LOGIN PASSWORD :'marketing_password';
CREATE ROLE audit_role LOGIN PASSWORD :'audit_password';
CREATE ROLE blocked_role LOGIN PASSWORD :'blocked_password';

CREATE DATABASE media_analytics;
\connect media_analytics
SET client_min_messages = warning;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA core;
CREATE SCHEMA media_consumption;
CREATE SCHEMA marketing AUTHORIZATION marketing_domain_role;

-- core ------------------------------------------------------------------------------------------

CREATE TABLE core.fct_playback_sessions (
    session_id     bigint PRIMARY KEY,
    country_code   text NOT NULL,
    user_id        bigint NOT NULL,
    content_id     bigint NOT NULL,
    started_at     timestamptz NOT NULL,
    seconds_played integer NOT NULL
);
INSERT INTO core.fct_playback_sessions VALUES
    (1001, 'DE', 501, 9001, '2024-03-04 18:01:00+00', 1520),
    (1002, 'DE', 502, 9002, '2024-03-04 19:15:00+00',  640),
    (1003, 'DE', 503, 9001, '2024-03-05 20:30:00+00', 2710),
    (2001, 'FR', 601, 9003, '2024-03-04 17:45:00+00',  980),
    (2002, 'FR', 602, 9001, '2024-03-06 21:10:00+00', 3120),
    (3001, 'ES', 701, 9002, '2024-03-05 22:00:00+00',  455),
    (4001, 'IT', 801, 9004, '2024-03-07 12:20:00+00', 1805);

ALTER TABLE core.fct_playback_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.fct_playback_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY reader_access ON core.fct_playback_sessions FOR SELECT USING (true);
CREATE POLICY domain_isolation_policy ON core.fct_playback_sessions AS RESTRICTIVE
USING (country_code = current_setting('request.jwt.claim.tenant', true)
       OR current_setting('request.jwt.claim.role', true) = 'global_corporate_audit');

CREATE TABLE core.scratch (
    id           bigserial PRIMARY KEY,
    country_code text NOT NULL DEFAULT current_setting('request.jwt.claim.tenant', true),
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE core.scratch ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.scratch FORCE ROW LEVEL SECURITY;
CREATE POLICY writer_access ON core.scratch USING (true) WITH CHECK (true);
CREATE POLICY domain_isolation_policy ON core.scratch AS RESTRICTIVE
USING (country_code = current_setting('request.jwt.claim.tenant', true)
       OR current_setting('request.jwt.claim.role', true) = 'global_corporate_audit')
WITH CHECK (country_code = current_setting('request.jwt.claim.tenant', true));

CREATE TABLE core.role_scratch (
    id   bigserial PRIMARY KEY,
    note text
);
ALTER TABLE core.role_scratch OWNER TO marketing_domain_role;
ALTER SEQUENCE core.role_scratch_id_seq OWNER TO marketing_domain_role;

-- media_consumption: the data product -------------------------------------------------------------

CREATE TABLE media_consumption.mrt_marketing_weekly_engagement (
    week           date NOT NULL,
    country_code   text NOT NULL,
    plays          integer NOT NULL,
    minutes_played numeric(12, 1) NOT NULL,
    PRIMARY KEY (week, country_code)
);
INSERT INTO media_consumption.mrt_marketing_weekly_engagement VALUES
    ('2024-03-04', 'DE', 2, 36.0),
    ('2024-03-11', 'DE', 1, 45.2),
    ('2024-03-04', 'FR', 1, 16.3),
    ('2024-03-11', 'FR', 1, 52.0),
    ('2024-03-04', 'ES', 1,  7.6),
    ('2024-03-04', 'IT', 1, 30.1);

ALTER TABLE media_consumption.mrt_marketing_weekly_engagement ENABLE ROW LEVEL SECURITY;
ALTER TABLE media_consumption.mrt_marketing_weekly_engagement FORCE ROW LEVEL SECURITY;
CREATE POLICY reader_access ON media_consumption.mrt_marketing_weekly_engagement
FOR SELECT USING (true);
CREATE POLICY domain_isolation_policy ON media_consumption.mrt_marketing_weekly_engagement
AS RESTRICTIVE
USING (country_code = current_setting('request.jwt.claim.tenant', true)
       OR current_setting('request.jwt.claim.role', true) = 'global_corporate_audit');

-- marketing ---------------------------------------------------------------------------------------

CREATE TABLE marketing.stg_local_campaigns (
    campaign_id   integer PRIMARY KEY,
    country_code  text NOT NULL,
    campaign_name text NOT NULL,
    budget_eur    numeric(12, 2) NOT NULL
);
INSERT INTO marketing.stg_local_campaigns VALUES
    (11, 'DE', 'Fruehlingsfilme',     25000.00),
    (12, 'DE', 'Bundesliga Replay',   40000.00),
    (21, 'FR', 'Printemps du cinema', 30000.00),
    (31, 'ES', 'Primavera Series',    15000.00),
    (41, 'IT', 'Serie A Highlights',  20000.00);

ALTER TABLE marketing.stg_local_campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE marketing.stg_local_campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY reader_access ON marketing.stg_local_campaigns FOR SELECT USING (true);
CREATE POLICY domain_isolation_policy ON marketing.stg_local_campaigns AS RESTRICTIVE
USING (country_code = current_setting('request.jwt.claim.tenant', true)
       OR current_setting('request.jwt.claim.role', true) = 'global_corporate_audit');

-- grants ------------------------------------------------------------------------------------------

REVOKE ALL ON DATABASE media_analytics FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE media_analytics TO marketing_domain_role, audit_role;
GRANT CONNECT ON DATABASE media_analytics TO blocked_role;

GRANT USAGE ON SCHEMA core, media_consumption, marketing TO marketing_domain_role, audit_role;
-- pgbench's tables, when a test creates them, live in public.
GRANT USAGE ON SCHEMA public TO marketing_domain_role, audit_role;
GRANT SELECT ON core.fct_playback_sessions, media_consumption.mrt_marketing_weekly_engagement,
    marketing.stg_local_campaigns TO marketing_domain_role, audit_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.scratch TO marketing_domain_role, audit_role;
GRANT USAGE ON SEQUENCE core.scratch_id_seq TO marketing_domain_role, audit_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.role_scratch TO audit_role;
GRANT USAGE ON SEQUENCE core.role_scratch_id_seq TO audit_role;
