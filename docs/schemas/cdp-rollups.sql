-- cdp-rollups.sql: the dashboard rollups for Postgres and Supabase. This file is migration 0002
-- of cdp-adapters: `cdp migrate` embeds this very file (cdp-adapters/src/migrate.rs). Apply it after
-- cdp-events.sql, with `cdp migrate` or in the Supabase SQL editor; running it twice is safe.
--
-- The dashboard reads these small tables instead of aggregating cdp_events. One statement-level
-- trigger keeps them current: it sees the rows a statement inserted (a transition table), so a
-- batch of a thousand events costs a handful of set-based statements, inside the same
-- transaction as the insert. Rows skipped by `on conflict do nothing` (duplicates) are not in
-- the transition table and are never counted. Inserts through Supabase REST fire it too.
--
-- Hours and days are UTC. Each rollup has a `*_recount` view computing it from cdp_events
-- alone; the backfill inserts from those views, and the adapters' `rollup_differences`
-- compares each table with its view: the rollups are correct exactly when the two agree.
--
-- Security stance as in cdp-events.sql: row level security on, no policies (server-only).

-- Serialise with writers while the trigger is installed and the backfill runs, so no insert
-- falls between the two. The lock lasts until the end of the transaction: `cdp migrate` runs
-- the file in one, and so does the SQL editor; with psql on a live database, wrap it in
-- begin/commit. (A DO block, so that outside a transaction it is a no-op, not an error.)
do $$ begin lock table cdp_events in share row exclusive mode; end $$;

-- Events per UTC hour, type, predicted persona and tunnel ('' unless the event is a
-- tunnel_viewed or hero_cta_clicked): the additive dashboard figures.
create table if not exists cdp_rollup_hourly (
    brand_id   text        not null,
    hour       timestamptz not null,
    event_type text        not null,
    persona    text        not null,
    tunnel     text        not null,
    events     bigint      not null,
    primary key (brand_id, hour, event_type, persona, tunnel)
);

-- The same per UTC day, so a month is read from a few thousand rows.
create table if not exists cdp_rollup_daily (
    brand_id   text   not null,
    day        date   not null,
    event_type text   not null,
    persona    text   not null,
    tunnel     text   not null,
    events     bigint not null,
    primary key (brand_id, day, event_type, persona, tunnel)
);

-- One row per visitor and UTC day with events: the first and last event of the day, the
-- latest event's persona and stage (latest by timestamp, then by processing order), and the
-- visitor's neighbouring events on other days (`prev_at`: the last event before this day;
-- `next_at`: the first event after it). The neighbours turn "distinct visitors in a window"
-- and "each visitor's latest event in a window" into plain filtered counts.
create table if not exists cdp_rollup_visitor_days (
    brand_id          text        not null,
    day               date        not null,
    anonymous_id      text        not null,
    first_at          timestamptz not null,
    last_at           timestamptz not null,
    prev_at           timestamptz,
    next_at           timestamptz,
    predicted_persona text        not null,
    explicit_persona  text,
    current_stage     text        not null,
    primary key (brand_id, day, anonymous_id)
);
create index if not exists cdp_rollup_visitor_days_visitor_idx
    on cdp_rollup_visitor_days (brand_id, anonymous_id, day);
-- A window's rows read from this index alone (an index-only scan) rather than the table.
create index if not exists cdp_rollup_visitor_days_window_idx
    on cdp_rollup_visitor_days (brand_id, day)
    include (first_at, last_at, prev_at, next_at, predicted_persona, explicit_persona,
             current_stage);

-- When each session started (its earliest event).
create table if not exists cdp_rollup_sessions (
    brand_id     text        not null,
    anonymous_id text        not null,
    session_id   text        not null,
    started_at   timestamptz not null,
    primary key (brand_id, anonymous_id, session_id)
);
create index if not exists cdp_rollup_sessions_started_idx
    on cdp_rollup_sessions (brand_id, started_at);

-- Sessions started per UTC day (a late event that moves a session's start moves its count).
create table if not exists cdp_rollup_session_days (
    brand_id text   not null,
    day      date   not null,
    sessions bigint not null,
    primary key (brand_id, day)
);

-- When each visitor was first identified: an event with a customer id, an email sign-up or
-- an identify event.
create table if not exists cdp_rollup_identities (
    brand_id      text        not null,
    anonymous_id  text        not null,
    identified_at timestamptz not null,
    primary key (brand_id, anonymous_id)
);
create index if not exists cdp_rollup_identities_identified_idx
    on cdp_rollup_identities (brand_id, identified_at);

-- Each visitor's first exposure to and first conversion in each A/B test variant.
create table if not exists cdp_rollup_ab (
    brand_id     text        not null,
    test_id      text        not null,
    variant      text        not null,
    anonymous_id text        not null,
    exposed_at   timestamptz,
    converted_at timestamptz,
    primary key (brand_id, test_id, variant, anonymous_id)
);
create index if not exists cdp_rollup_ab_exposed_idx
    on cdp_rollup_ab (brand_id, exposed_at) include (test_id, variant, converted_at);

-- The recounts: each rollup computed from cdp_events alone.
create or replace view cdp_rollup_hourly_recount as
select brand_id, date_trunc('hour', "timestamp", 'UTC') as hour, event_type,
       coalesce(predicted_persona, '') as persona,
       case when event_type in ('tunnel_viewed', 'hero_cta_clicked')
            then coalesce(properties ->> 'tunnel', '') else '' end as tunnel,
       count(*) as events
from cdp_events
group by 1, 2, 3, 4, 5;

create or replace view cdp_rollup_daily_recount as
select brand_id, (hour at time zone 'UTC')::date as day, event_type, persona, tunnel,
       sum(events)::bigint as events
from cdp_rollup_hourly_recount
group by 1, 2, 3, 4, 5;

create or replace view cdp_rollup_visitor_days_recount as
with days as (
    select distinct on (brand_id, ("timestamp" at time zone 'UTC')::date, anonymous_id)
           brand_id, ("timestamp" at time zone 'UTC')::date as day, anonymous_id,
           coalesce(predicted_persona, '') as predicted_persona, explicit_persona,
           coalesce(current_stage, '') as current_stage
    from cdp_events
    order by brand_id, ("timestamp" at time zone 'UTC')::date, anonymous_id,
             "timestamp" desc, seq desc
), spans as (
    select brand_id, ("timestamp" at time zone 'UTC')::date as day, anonymous_id,
           min("timestamp") as first_at, max("timestamp") as last_at
    from cdp_events group by 1, 2, 3
)
select s.brand_id, s.day, s.anonymous_id, s.first_at, s.last_at,
       lag(s.last_at) over v as prev_at, lead(s.first_at) over v as next_at,
       d.predicted_persona, d.explicit_persona, d.current_stage
from spans s
join days d using (brand_id, day, anonymous_id)
window v as (partition by s.brand_id, s.anonymous_id order by s.day);

create or replace view cdp_rollup_sessions_recount as
select brand_id, anonymous_id, coalesce(session_id, '') as session_id,
       min("timestamp") as started_at
from cdp_events group by 1, 2, 3;

create or replace view cdp_rollup_session_days_recount as
select brand_id, (started_at at time zone 'UTC')::date as day, count(*) as sessions
from cdp_rollup_sessions_recount
group by 1, 2;

create or replace view cdp_rollup_identities_recount as
select brand_id, anonymous_id, min("timestamp") as identified_at
from cdp_events
where customer_id is not null or event_type in ('email_signup', 'identify')
group by 1, 2;

create or replace view cdp_rollup_ab_recount as
select brand_id, properties ->> 'test_id' as test_id, properties ->> 'variant' as variant,
       anonymous_id,
       min("timestamp") filter (where event_type = 'ab_test_exposure') as exposed_at,
       min("timestamp") filter (where event_type = 'ab_test_conversion') as converted_at
from cdp_events
where event_type in ('ab_test_exposure', 'ab_test_conversion')
  and properties ->> 'test_id' is not null and properties ->> 'variant' is not null
group by 1, 2, 3, 4;

-- Backfill from the events already stored (nothing when the tables already hold rows, so
-- running this file twice counts nothing twice).
insert into cdp_rollup_hourly select * from cdp_rollup_hourly_recount
where not exists (select 1 from cdp_rollup_hourly);
insert into cdp_rollup_daily select * from cdp_rollup_daily_recount
where not exists (select 1 from cdp_rollup_daily);
insert into cdp_rollup_visitor_days select * from cdp_rollup_visitor_days_recount
where not exists (select 1 from cdp_rollup_visitor_days);
insert into cdp_rollup_sessions select * from cdp_rollup_sessions_recount
where not exists (select 1 from cdp_rollup_sessions);
insert into cdp_rollup_session_days select * from cdp_rollup_session_days_recount
where not exists (select 1 from cdp_rollup_session_days);
insert into cdp_rollup_identities select * from cdp_rollup_identities_recount
where not exists (select 1 from cdp_rollup_identities);
insert into cdp_rollup_ab select * from cdp_rollup_ab_recount
where not exists (select 1 from cdp_rollup_ab);

-- The maintenance. `set search_path from current` pins the schema this file was applied in,
-- because writers qualify table names and may run with any search_path (a transaction
-- pooler keeps none). Upserts go in key order so concurrent writers lock rows in one order.
create or replace function cdp_rollup_events() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into cdp_rollup_hourly as r (brand_id, hour, event_type, persona, tunnel, events)
    select brand_id, date_trunc('hour', "timestamp", 'UTC'), event_type,
           coalesce(predicted_persona, ''),
           case when event_type in ('tunnel_viewed', 'hero_cta_clicked')
                then coalesce(properties ->> 'tunnel', '') else '' end,
           count(*)
    from inserted
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (brand_id, hour, event_type, persona, tunnel)
    do update set events = r.events + excluded.events;

    insert into cdp_rollup_daily as r (brand_id, day, event_type, persona, tunnel, events)
    select brand_id, ("timestamp" at time zone 'UTC')::date, event_type,
           coalesce(predicted_persona, ''),
           case when event_type in ('tunnel_viewed', 'hero_cta_clicked')
                then coalesce(properties ->> 'tunnel', '') else '' end,
           count(*)
    from inserted
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (brand_id, day, event_type, persona, tunnel)
    do update set events = r.events + excluded.events;

    -- Each (visitor, day) of the statement widens its row; the latest event (ties: the
    -- statement's, processed last) sets the persona and stage.
    insert into cdp_rollup_visitor_days as d (brand_id, day, anonymous_id, first_at, last_at,
        predicted_persona, explicit_persona, current_stage)
    select distinct on (brand_id, day, anonymous_id)
           brand_id, day, anonymous_id,
           min("timestamp") over w, max("timestamp") over w,
           coalesce(predicted_persona, ''), explicit_persona, coalesce(current_stage, '')
    from (select *, ("timestamp" at time zone 'UTC')::date as day from inserted) e
    window w as (partition by brand_id, day, anonymous_id)
    order by brand_id, day, anonymous_id, "timestamp" desc, seq desc
    on conflict (brand_id, day, anonymous_id) do update set
        first_at = least(d.first_at, excluded.first_at),
        last_at = greatest(d.last_at, excluded.last_at),
        predicted_persona = case when excluded.last_at >= d.last_at
                                 then excluded.predicted_persona else d.predicted_persona end,
        explicit_persona = case when excluded.last_at >= d.last_at
                                then excluded.explicit_persona else d.explicit_persona end,
        current_stage = case when excluded.last_at >= d.last_at
                             then excluded.current_stage else d.current_stage end;

    -- Re-link the days of every visitor the statement touched (a few rows each, found
    -- through the visitor index), writing only the rows whose neighbours changed.
    update cdp_rollup_visitor_days d
    set prev_at = l.prev_at, next_at = l.next_at
    from (select distinct brand_id, anonymous_id from inserted) v
    cross join lateral (
        select x.day, lag(x.last_at) over o as prev_at, lead(x.first_at) over o as next_at
        from cdp_rollup_visitor_days x
        where x.brand_id = v.brand_id and x.anonymous_id = v.anonymous_id
        window o as (order by x.day)
    ) l
    where d.brand_id = v.brand_id and d.anonymous_id = v.anonymous_id and d.day = l.day
      and (d.prev_at is distinct from l.prev_at or d.next_at is distinct from l.next_at);

    -- Before the session rows change: a session the statement starts (or starts earlier)
    -- counts on its new day and no longer on its old one.
    with starts as (
        select brand_id, anonymous_id, coalesce(session_id, '') as session_id,
               min("timestamp") as started_at
        from inserted group by 1, 2, 3
    ), moved as (
        select n.brand_id, n.started_at as new_at, o.started_at as old_at
        from starts n
        left join cdp_rollup_sessions o
          on o.brand_id = n.brand_id and o.anonymous_id = n.anonymous_id
         and o.session_id = n.session_id
        where o.started_at is null or n.started_at < o.started_at
    ), deltas as (
        select brand_id, (new_at at time zone 'UTC')::date as day, 1 as d from moved
        union all
        select brand_id, (old_at at time zone 'UTC')::date, -1 from moved
        where old_at is not null
    )
    insert into cdp_rollup_session_days as sd (brand_id, day, sessions)
    select brand_id, day, sum(d) from deltas group by 1, 2 order by 1, 2
    on conflict (brand_id, day) do update set sessions = sd.sessions + excluded.sessions;
    delete from cdp_rollup_session_days where sessions = 0;

    insert into cdp_rollup_sessions as s (brand_id, anonymous_id, session_id, started_at)
    select brand_id, anonymous_id, coalesce(session_id, ''), min("timestamp")
    from inserted
    group by 1, 2, 3
    order by 1, 2, 3
    on conflict (brand_id, anonymous_id, session_id)
    do update set started_at = excluded.started_at where excluded.started_at < s.started_at;

    insert into cdp_rollup_identities as i (brand_id, anonymous_id, identified_at)
    select brand_id, anonymous_id, min("timestamp")
    from inserted
    where customer_id is not null or event_type in ('email_signup', 'identify')
    group by 1, 2
    order by 1, 2
    on conflict (brand_id, anonymous_id)
    do update set identified_at = excluded.identified_at
    where excluded.identified_at < i.identified_at;

    insert into cdp_rollup_ab as a (brand_id, test_id, variant, anonymous_id, exposed_at,
        converted_at)
    select brand_id, properties ->> 'test_id', properties ->> 'variant', anonymous_id,
           min("timestamp") filter (where event_type = 'ab_test_exposure'),
           min("timestamp") filter (where event_type = 'ab_test_conversion')
    from inserted
    where event_type in ('ab_test_exposure', 'ab_test_conversion')
      and properties ->> 'test_id' is not null and properties ->> 'variant' is not null
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4
    on conflict (brand_id, test_id, variant, anonymous_id) do update set
        exposed_at = least(a.exposed_at, excluded.exposed_at),
        converted_at = least(a.converted_at, excluded.converted_at);

    return null;
end;
$$;

drop trigger if exists cdp_events_rollup on cdp_events;
create trigger cdp_events_rollup
    after insert on cdp_events
    referencing new table as inserted
    for each statement execute function cdp_rollup_events();

-- Row level security on, no policies: see the security stance at the top of this file.
alter table cdp_rollup_hourly enable row level security;
alter table cdp_rollup_daily enable row level security;
alter table cdp_rollup_visitor_days enable row level security;
alter table cdp_rollup_sessions enable row level security;
alter table cdp_rollup_session_days enable row level security;
alter table cdp_rollup_identities enable row level security;
alter table cdp_rollup_ab enable row level security;
