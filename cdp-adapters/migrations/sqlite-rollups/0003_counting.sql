-- The rollups as keyed counters and facts, folded by cdp-core's `counting` module; the same
-- tables as docs/schemas/cdp-counting.sql (migration 0005 on Postgres) in SQLite's types.
-- Timestamps are the stored RFC 3339 text (UTC, microseconds, `Z`: fixed width, so text order
-- is time order).
--
-- Upgrade: the old rollup tables go and the fold mark returns to 0, so the first fold after
-- this migration recounts every stored event into the new tables.

drop table if exists cdp_rollup_hourly;
drop table if exists cdp_rollup_daily;
drop table if exists cdp_rollup_visitor_days;
drop table if exists cdp_rollup_sessions;
drop table if exists cdp_rollup_session_days;
drop table if exists cdp_rollup_identities;
drop table if exists cdp_rollup_ab;

create table if not exists cdp_counters (
    brand_id text    not null,
    counter  text    not null,
    bucket   text    not null,
    dim1     text    not null,
    dim2     text    not null,
    dim3     text    not null,
    value    integer not null,
    primary key (brand_id, counter, bucket, dim1, dim2, dim3)
) without rowid;

create table if not exists cdp_facts (
    brand_id text not null,
    entity   text not null,
    kind     text not null,
    part     text not null,
    at       text,
    t1       text,
    t2       text,
    t3       text,
    g1       text,
    g2       text,
    g3       text,
    primary key (brand_id, entity, kind, part)
) without rowid;
create index if not exists cdp_facts_at_idx on cdp_facts (brand_id, kind, at, t1, t2, t3, g1, g2, g3);

update cdp_rollup_mark set folded_seq = 0;
