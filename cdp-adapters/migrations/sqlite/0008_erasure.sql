-- Erasing one person (see docs/schemas/cdp-erasure.sql, the same tables in SQLite's types):
-- tombstones (keyed hashes of erased identifiers, never their values) and the audit of each
-- erasure.

create table if not exists cdp_tombstones (
    brand_id    text    not null,
    hash        text    not null check (length(hash) = 64),
    id_kind     text    not null,
    erasure_id  text    not null,
    erased_at   text    not null,
    suppressed  integer not null default 0,
    last_suppressed_at text,
    primary key (brand_id, hash)
) without rowid;

create table if not exists cdp_erasures (
    brand_id     text    not null,
    erasure_id   text    not null,
    erased_at    text    not null,
    identifiers  integer not null,
    events       integer not null,
    searches     integer not null,
    profiles     integer not null,
    edges        integer not null,
    primary key (brand_id, erasure_id)
) without rowid;

