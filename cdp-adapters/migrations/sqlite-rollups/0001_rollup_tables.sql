-- The rollup file's first tables: the rollup tables of the event file's migration 0002, as
-- that migration defined them (this file is a verbatim copy of its table definitions, which
-- the rollup file used to cut out of 0002's text). Migration 0003 replaces them.
--
-- Dashboard rollups for the embedded SQLite store: the same tables, views and rules as
-- docs/schemas/cdp-rollups.sql, maintained by row triggers on cdp_events, so every
-- rollup changes in the same transaction as the event insert that caused it. Rows skipped by
-- `on conflict do nothing` (duplicates) fire no trigger and are never counted.
--
-- Timestamps are the stored RFC 3339 text; an hour is its first 13 characters
-- ('2026-03-08T14') and a day its first 10 ('2026-03-08'), both in UTC.
--
-- Each rollup has a `*_recount` view computing it from cdp_events alone. The backfill below
-- inserts from those views, and the adapters' `rollup_differences` compares each table with
-- its view: the rollups are correct exactly when the two agree.

-- Events per UTC hour, type, predicted persona and tunnel ('' unless the event is a
-- tunnel_viewed or hero_cta_clicked): the additive dashboard figures.
create table if not exists cdp_rollup_hourly (
    brand_id   text    not null,
    hour       text    not null,
    event_type text    not null,
    persona    text    not null,
    tunnel     text    not null,
    events     integer not null,
    primary key (brand_id, hour, event_type, persona, tunnel)
) without rowid;

-- The same per UTC day, so a month is read from a few thousand rows.
create table if not exists cdp_rollup_daily (
    brand_id   text    not null,
    day        text    not null,
    event_type text    not null,
    persona    text    not null,
    tunnel     text    not null,
    events     integer not null,
    primary key (brand_id, day, event_type, persona, tunnel)
) without rowid;

-- One row per visitor and UTC day with events: the first and last event of the day, the
-- latest event's persona and stage (latest by timestamp, then by processing order), and the
-- visitor's neighbouring events on other days (`prev_at`: the last event before this day;
-- `next_at`: the first event after it). The neighbours turn "distinct visitors in a window"
-- and "each visitor's latest event in a window" into plain filtered counts.
create table if not exists cdp_rollup_visitor_days (
    brand_id          text not null,
    day               text not null,
    anonymous_id      text not null,
    first_at          text not null,
    last_at           text not null,
    prev_at           text,
    next_at           text,
    predicted_persona text not null,
    explicit_persona  text,
    current_stage     text not null,
    primary key (brand_id, day, anonymous_id)
) without rowid;
create index if not exists cdp_rollup_visitor_days_visitor_idx
    on cdp_rollup_visitor_days (brand_id, anonymous_id, day);

-- When each session started (its earliest event).
create table if not exists cdp_rollup_sessions (
    brand_id     text not null,
    anonymous_id text not null,
    session_id   text not null,
    started_at   text not null,
    primary key (brand_id, anonymous_id, session_id)
) without rowid;
create index if not exists cdp_rollup_sessions_started_idx
    on cdp_rollup_sessions (brand_id, started_at);

-- Sessions started per UTC day (a late event that moves a session's start moves its count).
create table if not exists cdp_rollup_session_days (
    brand_id text    not null,
    day      text    not null,
    sessions integer not null,
    primary key (brand_id, day)
) without rowid;

-- When each visitor was first identified: an event with a customer id, an email sign-up or
-- an identify event.
create table if not exists cdp_rollup_identities (
    brand_id      text not null,
    anonymous_id  text not null,
    identified_at text not null,
    primary key (brand_id, anonymous_id)
) without rowid;
create index if not exists cdp_rollup_identities_identified_idx
    on cdp_rollup_identities (brand_id, identified_at);

-- Each visitor's first exposure to and first conversion in each A/B test variant.
create table if not exists cdp_rollup_ab (
    brand_id     text not null,
    test_id      text not null,
    variant      text not null,
    anonymous_id text not null,
    exposed_at   text,
    converted_at text,
    primary key (brand_id, test_id, variant, anonymous_id)
) without rowid;
create index if not exists cdp_rollup_ab_exposed_idx
    on cdp_rollup_ab (brand_id, exposed_at, converted_at);

