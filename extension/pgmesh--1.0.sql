-- pgmesh 1.0: the SQL face of the library. EXECUTE is PUBLIC on purpose: apply() only accepts a
-- message MACed under the key pgmesh shares with the server, bound to this backend's nonce and
-- an increasing counter, so being able to call it gives a reader nothing.
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
GRANT EXECUTE ON FUNCTION pgmesh.nonce(), pgmesh.apply(bigint, text[], text), pgmesh.clear(),
    pgmesh.version() TO PUBLIC;
