-- cdp-erasure.sql: erasing one person (GDPR/CCPA), for Postgres and Supabase. This file is
-- migration 0007 of cdp-adapters (`cdp migrate` embeds this very file, see
-- cdp-adapters/src/migrate.rs). Apply it after cdp-identity.sql; running it twice is safe.
--
-- An erasure (`DELETE /api/cdp/people/{key}`) removes the person's events, searches,
-- profiles, identity edges and rollup contributions in one transaction, and leaves behind a
-- tombstone per identifier: a keyed hash (HMAC-SHA256 under the operator's tombstone key,
-- which is never stored here), so nothing in the database names the person, while the
-- collector still recognises and suppresses a later event that carries an erased identifier.
-- `suppressed` counts those events per tombstone.

create table if not exists cdp_tombstones (
    brand_id    text        not null,
    hash        text        not null check (hash ~ '^[0-9a-f]{64}$'),
    id_kind     text        not null,
    erasure_id  uuid        not null,
    erased_at   timestamptz not null,
    suppressed  bigint      not null default 0,
    last_suppressed_at timestamptz,
    primary key (brand_id, hash)
);

-- One row per erasure, the audit of what it removed (counts only, no identifier).
create table if not exists cdp_erasures (
    brand_id     text        not null,
    erasure_id   uuid        not null,
    erased_at    timestamptz not null,
    identifiers  integer     not null,
    events       bigint      not null,
    searches     bigint      not null,
    profiles     bigint      not null,
    edges        bigint      not null,
    primary key (brand_id, erasure_id)
);


-- Row level security on, no policies: only the service role (the collector) reads and writes.
alter table cdp_tombstones enable row level security;
alter table cdp_erasures enable row level security;
