-- The identity log (see docs/schemas/cdp-identity.sql, the same table in SQLite's types):
-- one row per pair of identifiers and kind, the earliest edge, written in the events'
-- transaction.

create table if not exists cdp_identity_edges (
    brand_id   text not null,
    edge_kind  text not null check (edge_kind in ('link', 'exclude')),
    a_kind     text not null,
    a_value    text not null,
    b_kind     text not null,
    b_value    text not null,
    at         text not null,
    event_id   text not null,
    origin     text not null check (origin in ('event', 'admin')),
    primary key (brand_id, edge_kind, a_kind, a_value, b_kind, b_value)
) without rowid;
create index if not exists cdp_identity_edges_b_idx on cdp_identity_edges (brand_id, b_kind, b_value);
