-- pgmesh 1.0: the SQL face of the library. EXECUTE on apply() is PUBLIC on purpose: it only
-- accepts a message MACed under the key pgmesh shares with the server, bound to this backend's
-- nonce and an increasing counter, so being able to call it gives a reader nothing (a forged
-- message ends the caller's own backend). clear() is for superusers: pgmesh clears claims with an
-- authenticated apply() naming none, and keeps a connection's claims between transactions only
-- because nothing but apply() changes them.
\echo Use "CREATE EXTENSION pgmesh" to load this file. \quit

-- The nonce is per backend, so a parallel worker would see another one: leader only.
CREATE FUNCTION pgmesh.nonce() RETURNS text
    AS 'MODULE_PATHNAME', 'pgmesh_nonce' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

-- Not STRICT: a NULL argument must fail loudly, not return NULL as if it had applied.
CREATE FUNCTION pgmesh.apply(counter bigint, settings text[], mac text) RETURNS void
    AS 'MODULE_PATHNAME', 'pgmesh_apply' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgmesh.clear() RETURNS void
    AS 'MODULE_PATHNAME', 'pgmesh_clear' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgmesh.version() RETURNS text
    AS 'MODULE_PATHNAME', 'pgmesh_version' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

GRANT USAGE ON SCHEMA pgmesh TO PUBLIC;
REVOKE EXECUTE ON FUNCTION pgmesh.clear() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgmesh.nonce(), pgmesh.apply(bigint, text[], text), pgmesh.version()
    TO PUBLIC;
