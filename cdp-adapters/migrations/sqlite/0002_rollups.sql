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

-- The recounts: each rollup computed from cdp_events alone.
drop view if exists cdp_rollup_hourly_recount;
create view cdp_rollup_hourly_recount as
select brand_id, substr("timestamp", 1, 13) as hour, event_type,
       coalesce(predicted_persona, '') as persona,
       case when event_type in ('tunnel_viewed', 'hero_cta_clicked')
            then coalesce(cast(json_extract(properties, '$.tunnel') as text), '') else '' end as tunnel,
       count(*) as events
from cdp_events
group by 1, 2, 3, 4, 5;

drop view if exists cdp_rollup_daily_recount;
create view cdp_rollup_daily_recount as
select brand_id, substr(hour, 1, 10) as day, event_type, persona, tunnel, sum(events) as events
from cdp_rollup_hourly_recount
group by 1, 2, 3, 4, 5;

drop view if exists cdp_rollup_visitor_days_recount;
create view cdp_rollup_visitor_days_recount as
with days as (
    select brand_id, substr("timestamp", 1, 10) as day, anonymous_id,
           min("timestamp") as first_at, max("timestamp") as last_at
    from cdp_events group by 1, 2, 3
), latest as (
    select brand_id, substr("timestamp", 1, 10) as day, anonymous_id,
           coalesce(predicted_persona, '') as predicted_persona, explicit_persona,
           coalesce(current_stage, '') as current_stage,
           row_number() over (partition by brand_id, substr("timestamp", 1, 10), anonymous_id
                              order by "timestamp" desc, seq desc) as n
    from cdp_events
)
select d.brand_id, d.day, d.anonymous_id, d.first_at, d.last_at,
       lag(d.last_at) over v as prev_at, lead(d.first_at) over v as next_at,
       l.predicted_persona, l.explicit_persona, l.current_stage
from days d
join latest l on l.brand_id = d.brand_id and l.day = d.day and l.anonymous_id = d.anonymous_id
             and l.n = 1
window v as (partition by d.brand_id, d.anonymous_id order by d.day);

drop view if exists cdp_rollup_sessions_recount;
create view cdp_rollup_sessions_recount as
select brand_id, anonymous_id, coalesce(session_id, '') as session_id, min("timestamp") as started_at
from cdp_events group by 1, 2, 3;

drop view if exists cdp_rollup_session_days_recount;
create view cdp_rollup_session_days_recount as
select brand_id, substr(started_at, 1, 10) as day, count(*) as sessions
from cdp_rollup_sessions_recount
group by 1, 2;

drop view if exists cdp_rollup_identities_recount;
create view cdp_rollup_identities_recount as
select brand_id, anonymous_id, min("timestamp") as identified_at
from cdp_events
where customer_id is not null or event_type in ('email_signup', 'identify')
group by 1, 2;

drop view if exists cdp_rollup_ab_recount;
create view cdp_rollup_ab_recount as
select brand_id, cast(json_extract(properties, '$.test_id') as text) as test_id,
       cast(json_extract(properties, '$.variant') as text) as variant, anonymous_id,
       min(case when event_type = 'ab_test_exposure' then "timestamp" end) as exposed_at,
       min(case when event_type = 'ab_test_conversion' then "timestamp" end) as converted_at
from cdp_events
where event_type in ('ab_test_exposure', 'ab_test_conversion')
  and json_extract(properties, '$.test_id') is not null
  and json_extract(properties, '$.variant') is not null
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

-- Maintenance: one trigger per rollup, each a few index probes per event. The neighbour
-- lookups name the visitor index: left to itself the planner may walk the day-ordered primary
-- key backwards instead, which grows with the table.
drop trigger if exists cdp_events_rollup_hourly;
create trigger cdp_events_rollup_hourly after insert on cdp_events for each row
begin
    insert into cdp_rollup_hourly (brand_id, hour, event_type, persona, tunnel, events)
    values (new.brand_id, substr(new."timestamp", 1, 13), new.event_type,
            coalesce(new.predicted_persona, ''),
            case when new.event_type in ('tunnel_viewed', 'hero_cta_clicked')
                 then coalesce(cast(json_extract(new.properties, '$.tunnel') as text), '')
                 else '' end,
            1)
    on conflict (brand_id, hour, event_type, persona, tunnel) do update set events = events + 1;
    insert into cdp_rollup_daily (brand_id, day, event_type, persona, tunnel, events)
    values (new.brand_id, substr(new."timestamp", 1, 10), new.event_type,
            coalesce(new.predicted_persona, ''),
            case when new.event_type in ('tunnel_viewed', 'hero_cta_clicked')
                 then coalesce(cast(json_extract(new.properties, '$.tunnel') as text), '')
                 else '' end,
            1)
    on conflict (brand_id, day, event_type, persona, tunnel) do update set events = events + 1;
end;

drop trigger if exists cdp_events_rollup_visitor_days;
create trigger cdp_events_rollup_visitor_days after insert on cdp_events for each row
begin
    -- The event's day: a new row takes its neighbours from the visitor's other days; an
    -- existing one widens to the event, and the latest event (ties: this one, processed
    -- last) sets the persona and stage.
    insert into cdp_rollup_visitor_days (brand_id, day, anonymous_id, first_at, last_at,
        prev_at, next_at, predicted_persona, explicit_persona, current_stage)
    values (new.brand_id, substr(new."timestamp", 1, 10), new.anonymous_id,
            new."timestamp", new."timestamp",
            (select p.last_at from cdp_rollup_visitor_days p indexed by cdp_rollup_visitor_days_visitor_idx
             where p.brand_id = new.brand_id and p.anonymous_id = new.anonymous_id
               and p.day < substr(new."timestamp", 1, 10)
             order by p.day desc limit 1),
            (select n.first_at from cdp_rollup_visitor_days n indexed by cdp_rollup_visitor_days_visitor_idx
             where n.brand_id = new.brand_id and n.anonymous_id = new.anonymous_id
               and n.day > substr(new."timestamp", 1, 10)
             order by n.day limit 1),
            coalesce(new.predicted_persona, ''), new.explicit_persona,
            coalesce(new.current_stage, ''))
    on conflict (brand_id, day, anonymous_id) do update set
        first_at = min(first_at, excluded.first_at),
        predicted_persona = case when excluded.last_at >= last_at
                                 then excluded.predicted_persona else predicted_persona end,
        explicit_persona = case when excluded.last_at >= last_at
                                then excluded.explicit_persona else explicit_persona end,
        current_stage = case when excluded.last_at >= last_at
                             then excluded.current_stage else current_stage end,
        last_at = max(last_at, excluded.last_at);
    -- The visitor's previous day now continues no later than this event.
    update cdp_rollup_visitor_days set next_at = new."timestamp"
    where brand_id = new.brand_id and anonymous_id = new.anonymous_id
      and day = (select max(p.day) from cdp_rollup_visitor_days p
                 indexed by cdp_rollup_visitor_days_visitor_idx
                 where p.brand_id = new.brand_id and p.anonymous_id = new.anonymous_id
                   and p.day < substr(new."timestamp", 1, 10))
      and (next_at is null or next_at > new."timestamp");
    -- The visitor's next day is now preceded by this event at the latest.
    update cdp_rollup_visitor_days set prev_at = new."timestamp"
    where brand_id = new.brand_id and anonymous_id = new.anonymous_id
      and day = (select min(n.day) from cdp_rollup_visitor_days n
                 indexed by cdp_rollup_visitor_days_visitor_idx
                 where n.brand_id = new.brand_id and n.anonymous_id = new.anonymous_id
                   and n.day > substr(new."timestamp", 1, 10))
      and (prev_at is null or prev_at < new."timestamp");
end;

drop trigger if exists cdp_events_rollup_sessions;
create trigger cdp_events_rollup_sessions after insert on cdp_events for each row
begin
    -- Before the session row changes: an earlier event moves the session's start, so its old
    -- day loses it (and is dropped at zero), and the event's day gains it unless the session
    -- already started at or before the event.
    update cdp_rollup_session_days set sessions = sessions - 1
    where brand_id = new.brand_id
      and day = (select substr(s.started_at, 1, 10) from cdp_rollup_sessions s
                 where s.brand_id = new.brand_id and s.anonymous_id = new.anonymous_id
                   and s.session_id = coalesce(new.session_id, '')
                   and s.started_at > new."timestamp");
    delete from cdp_rollup_session_days
    where brand_id = new.brand_id and sessions = 0
      and day = (select substr(s.started_at, 1, 10) from cdp_rollup_sessions s
                 where s.brand_id = new.brand_id and s.anonymous_id = new.anonymous_id
                   and s.session_id = coalesce(new.session_id, '')
                   and s.started_at > new."timestamp");
    insert into cdp_rollup_session_days (brand_id, day, sessions)
    select new.brand_id, substr(new."timestamp", 1, 10), 1
    where not exists (select 1 from cdp_rollup_sessions s
                      where s.brand_id = new.brand_id and s.anonymous_id = new.anonymous_id
                        and s.session_id = coalesce(new.session_id, '')
                        and s.started_at <= new."timestamp")
    on conflict (brand_id, day) do update set sessions = sessions + 1;
    insert into cdp_rollup_sessions (brand_id, anonymous_id, session_id, started_at)
    values (new.brand_id, new.anonymous_id, coalesce(new.session_id, ''), new."timestamp")
    on conflict (brand_id, anonymous_id, session_id) do update set started_at = excluded.started_at
    where excluded.started_at < started_at;
end;

drop trigger if exists cdp_events_rollup_identities;
create trigger cdp_events_rollup_identities after insert on cdp_events for each row
when new.customer_id is not null or new.event_type in ('email_signup', 'identify')
begin
    insert into cdp_rollup_identities (brand_id, anonymous_id, identified_at)
    values (new.brand_id, new.anonymous_id, new."timestamp")
    on conflict (brand_id, anonymous_id) do update set identified_at = excluded.identified_at
    where excluded.identified_at < identified_at;
end;

drop trigger if exists cdp_events_rollup_ab;
create trigger cdp_events_rollup_ab after insert on cdp_events for each row
when new.event_type in ('ab_test_exposure', 'ab_test_conversion')
 and json_extract(new.properties, '$.test_id') is not null
 and json_extract(new.properties, '$.variant') is not null
begin
    insert into cdp_rollup_ab (brand_id, test_id, variant, anonymous_id, exposed_at, converted_at)
    values (new.brand_id, cast(json_extract(new.properties, '$.test_id') as text),
            cast(json_extract(new.properties, '$.variant') as text), new.anonymous_id,
            case when new.event_type = 'ab_test_exposure' then new."timestamp" end,
            case when new.event_type = 'ab_test_conversion' then new."timestamp" end)
    on conflict (brand_id, test_id, variant, anonymous_id) do update set
        exposed_at = coalesce(min(exposed_at, excluded.exposed_at), exposed_at, excluded.exposed_at),
        converted_at = coalesce(min(converted_at, excluded.converted_at), converted_at,
                                excluded.converted_at);
end;
