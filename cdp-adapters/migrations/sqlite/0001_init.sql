-- The CDP tables for the embedded SQLite store: the same tables, columns, unique constraints
-- and indexes as docs/schemas/cdp-events.sql, in SQLite's types.
--
-- Timestamps are TEXT in one fixed RFC 3339 form (UTC, microseconds, `Z`), so text order is
-- time order and comparisons in SQL are correct. JSON columns are TEXT holding JSON. `seq` is
-- the rowid, so it records processing order. There is no row level security in SQLite: the
-- file is only readable by the collector's user.

create table if not exists cdp_events (
    seq                integer primary key autoincrement,
    id                 text    not null unique default (lower(hex(randomblob(16)))),
    brand_id           text    not null default 'southland',
    event_id           text,
    event_type         text    not null,
    anonymous_id       text    not null,
    customer_id        text,
    session_id         text,
    "timestamp"        text    not null,
    page_url           text,
    page_title         text,
    referrer           text,
    utm_source         text,
    utm_medium         text,
    utm_campaign       text,
    properties         text    default '{}',
    predicted_persona  text,
    persona_confidence real,
    explicit_persona   text,
    current_stage      text,
    stage_confidence   real,
    persona_scores     text,
    processed_at       text    default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    unique (brand_id, event_id)
);
create index if not exists cdp_events_brand_timestamp_idx on cdp_events (brand_id, "timestamp" desc);
create index if not exists cdp_events_event_type_idx on cdp_events (event_type);
create index if not exists cdp_events_predicted_persona_idx on cdp_events (predicted_persona);
create index if not exists cdp_events_anonymous_id_idx on cdp_events (anonymous_id);
create index if not exists cdp_events_current_stage_idx on cdp_events (current_stage);

create table if not exists cdp_searches (
    id            text    primary key default (lower(hex(randomblob(16)))),
    brand_id      text    not null default 'southland',
    event_id      text    not null,
    query         text    not null,
    anonymous_id  text,
    results_count integer default 0,
    page_url      text,
    searched_at   text    default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    unique (brand_id, event_id)
);
create index if not exists cdp_searches_brand_searched_at_idx on cdp_searches (brand_id, searched_at desc);
create index if not exists cdp_searches_query_idx on cdp_searches (query);

create table if not exists cdp_profiles (
    id                 text    primary key default (lower(hex(randomblob(16)))),
    brand_id           text    not null default 'southland',
    anonymous_id       text    not null,
    customer_id        text,
    email              text,
    predicted_persona  text,
    persona_confidence real,
    explicit_persona   text,
    persona_scores     text,
    current_stage      text,
    stage_confidence   real,
    first_seen         text,
    last_seen          text,
    session_count      integer default 0,
    total_signals      integer default 0,
    identity_stitched  integer default 0,
    profile            text    not null,
    expires_at         text    not null,
    updated_at         text    not null,
    unique (brand_id, anonymous_id)
);
create index if not exists cdp_profiles_customer_id_idx on cdp_profiles (customer_id);
create index if not exists cdp_profiles_email_idx on cdp_profiles (email);
create index if not exists cdp_profiles_predicted_persona_idx on cdp_profiles (predicted_persona);
create index if not exists cdp_profiles_expires_at_idx on cdp_profiles (expires_at);
