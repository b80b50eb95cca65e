-- cdp-events.sql: the CDP tables (cdp_events, cdp_searches, cdp_profiles) for Postgres and
-- Supabase. This file is migration 0001 of cdp-adapters: `cdp migrate` embeds this very file
-- (cdp-adapters/src/migrate.rs), so what is published here is what runs.
--
-- How to apply: `cdp migrate --database-url postgres://...` records it in schema_migrations, or
-- paste this file into the Supabase SQL editor. It is safe to run twice: every statement is
-- guarded with IF NOT EXISTS.
--
-- Security stance: row level security is ENABLED on all three tables and NO policy is created.
-- The collector and the dashboard API connect as the table owner or with the Supabase service
-- role, both of which bypass RLS, so they read and write as usual. Every other role, notably
-- `anon` and `authenticated` behind a leaked anon key, matches no policy and therefore reads
-- and writes nothing. These are server-only tables: never add a policy that opens them to a
-- browser; serve browsers through the dashboard API instead.

-- Needs Postgres 13 or later (gen_random_uuid() is built in); Supabase runs 15 or later.

-- Enriched events, one row per accepted pixel event. Persona and stage are first-class,
-- indexable columns; `properties` is the event-specific payload only and is never queried for
-- core analytics. `seq` records processing order, which profiles are rebuilt in.
create table if not exists cdp_events (
    id                 uuid        primary key default gen_random_uuid(),
    seq                bigint      generated always as identity,
    brand_id           text        not null default 'southland',
    event_id           text,
    event_type         text        not null,
    anonymous_id       text        not null,
    customer_id        text,
    session_id         text,
    "timestamp"        timestamptz not null,
    page_url           text,
    page_title         text,
    referrer           text,
    utm_source         text,
    utm_medium         text,
    utm_campaign       text,
    properties         jsonb       default '{}',
    predicted_persona  text,
    persona_confidence real,
    explicit_persona   text,
    current_stage      text,
    stage_confidence   real,
    persona_scores     jsonb,
    processed_at       timestamptz default now(),
    -- Dedup safety: a replayed event (same client event_id) is stored once.
    constraint cdp_events_brand_event_key unique (brand_id, event_id)
);
create index if not exists cdp_events_brand_timestamp_idx on cdp_events (brand_id, "timestamp" desc);
create index if not exists cdp_events_event_type_idx on cdp_events (event_type);
create index if not exists cdp_events_predicted_persona_idx on cdp_events (predicted_persona);
create index if not exists cdp_events_anonymous_id_idx on cdp_events (anonymous_id);
create index if not exists cdp_events_current_stage_idx on cdp_events (current_stage);
create index if not exists cdp_events_seq_idx on cdp_events (seq);

-- Search queries, one row per search_performed event. `event_id` makes writes idempotent like
-- cdp_events: a replayed batch does not count a search twice.
create table if not exists cdp_searches (
    id            uuid        primary key default gen_random_uuid(),
    brand_id      text        not null default 'southland',
    event_id      text        not null,
    query         text        not null,
    anonymous_id  text,
    results_count integer     default 0,
    page_url      text,
    searched_at   timestamptz default now(),
    constraint cdp_searches_brand_event_key unique (brand_id, event_id)
);
create index if not exists cdp_searches_brand_searched_at_idx on cdp_searches (brand_id, searched_at desc);
create index if not exists cdp_searches_query_idx on cdp_searches (query);

-- Golden profiles. The summary columns are for SQL queries; `profile` is the full serialized
-- profile the collector loads back. A profile expires `profile_ttl_days` after its last update:
-- `expires_at` is set on every save, loads ignore expired rows and `purge_expired` deletes them.
create table if not exists cdp_profiles (
    id                 uuid        primary key default gen_random_uuid(),
    brand_id           text        not null default 'southland',
    anonymous_id       text        not null,
    customer_id        text,
    email              text,
    predicted_persona  text,
    persona_confidence real,
    explicit_persona   text,
    persona_scores     jsonb,
    current_stage      text,
    stage_confidence   real,
    first_seen         timestamptz,
    last_seen          timestamptz,
    session_count      integer     default 0,
    total_signals      integer     default 0,
    identity_stitched  boolean     default false,
    profile            jsonb       not null,
    expires_at         timestamptz not null,
    updated_at         timestamptz not null default now(),
    constraint cdp_profiles_brand_anonymous_key unique (brand_id, anonymous_id)
);
create index if not exists cdp_profiles_customer_id_idx on cdp_profiles (customer_id);
create index if not exists cdp_profiles_email_idx on cdp_profiles (email);
create index if not exists cdp_profiles_predicted_persona_idx on cdp_profiles (predicted_persona);
create index if not exists cdp_profiles_expires_at_idx on cdp_profiles (expires_at);

-- Row level security on, no policies: see the security stance at the top of this file.
alter table cdp_events enable row level security;
alter table cdp_searches enable row level security;
alter table cdp_profiles enable row level security;
