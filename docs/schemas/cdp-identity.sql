-- cdp-identity.sql: the identity log, for Postgres and Supabase. This file is migration 0006
-- of cdp-adapters (`cdp migrate` embeds this very file, see cdp-adapters/src/migrate.rs).
-- Apply it after cdp-counting.sql, with `cdp migrate` or in the Supabase SQL editor; running
-- it twice is safe.
--
-- Identity is kept as edges between identifiers (a browser's anonymous id, an email, a
-- customer id), never as a rewrite of stored rows: `cdp_core::identity::resolve` computes the
-- people from the edges each time, so a merge is an edge and a split is an exclusion edge.
-- The collector writes the edges its events make in the same statement as the events (one
-- transaction); admin merges and splits add edges of origin `admin`.
--
-- One row per pair of identifiers and kind: the earliest edge (by `at`, then `event_id`), kept
-- by an upsert that only ever moves a row earlier. Sides are in the core's canonical order
-- (a <= b). Values are stored as sent; the core normalises them and refuses junk when it
-- resolves, under the rules in force then.

create table if not exists cdp_identity_edges (
    brand_id   text        not null,
    edge_kind  text        not null check (edge_kind in ('link', 'exclude')),
    a_kind     text        not null,
    a_value    text        not null,
    b_kind     text        not null,
    b_value    text        not null,
    at         timestamptz not null,
    event_id   text        not null,
    origin     text        not null check (origin in ('event', 'admin')),
    primary key (brand_id, edge_kind, a_kind, a_value, b_kind, b_value)
);
-- Finding the edges of an identifier on either side (a person's lookup, an erase).
create index if not exists cdp_identity_edges_b_idx on cdp_identity_edges (brand_id, b_kind, b_value);

-- Row level security on, no policies: only the service role (the collector) reads and writes.
alter table cdp_identity_edges enable row level security;
