-- pgmesh 1.1: switch(), apply() for a connection passing to another tenant's or role's client,
-- which first scrubs what the last client left in the session (settings, WITH HOLD cursors,
-- LISTEN, advisory locks, sequence state, temporary objects) and may also set application_name.
-- PUBLIC for the same reason as apply(): without pgmesh's key it only ends the caller's backend.
\echo Use "ALTER EXTENSION pgmesh UPDATE TO '1.1'" to load this file. \quit

CREATE FUNCTION pgmesh.switch(counter bigint, settings text[], mac text) RETURNS void
    AS 'MODULE_PATHNAME', 'pgmesh_switch' LANGUAGE C VOLATILE PARALLEL UNSAFE;

GRANT EXECUTE ON FUNCTION pgmesh.switch(bigint, text[], text) TO PUBLIC;
