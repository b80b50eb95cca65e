-- cdp-rollup-maintenance.sql: the dashboard rollups kept off the write path, for Postgres and
-- Supabase. This file is migration 0003 of cdp-adapters (`cdp migrate` embeds this very file,
-- see cdp-adapters/src/migrate.rs). Apply it after cdp-rollups.sql, with `cdp migrate` or in
-- the Supabase SQL editor; running it twice is safe. It changes when and how the rollups are
-- kept, not what they hold: the `*_recount` views of cdp-rollups.sql still define them.
--
-- Why: migration 0002 updated every rollup inside each insert's transaction. With the small
-- commits that single-event traffic makes (a few dozen events each), that trigger cost Postgres
-- more than the insert itself and halved what one collector could acknowledge (`cdp load`:
-- 14,900 against 7,300 single-event requests per second on the same machine; figures in the
-- issue notes).
--
-- How:
-- * An insert into cdp_events only copies the few columns the rollups need into
--   `cdp_rollup_pending` (one set-based statement per insert, a heap row per event, no index),
--   in the insert's own transaction: an event is pending exactly when it is stored.
-- * `select cdp_rollup_flush()` folds everything pending into the rollups in one transaction
--   and returns how many events it folded. Flushes are serialised by a row lock on
--   `cdp_rollup_flusher` (which also records the last flush), so two flushes never fold the
--   same visitor at once. `cdp serve` folds every 2 seconds, and the dashboard queries fold
--   before they read, so the dashboard never shows a pending event as missing. With Supabase
--   REST writers and no `cdp serve`, schedule the flush (pg_cron: `select cron.schedule(
--   'cdp-rollups', '5 seconds', 'select cdp_rollup_flush()')`) or let the dashboard reads do it.
-- * A fold is set-based over thousands of events at once, so each hour's counters, session-day
--   counts and visitor-day rows are written once per flush instead of once per commit, and a
--   visitor's days are re-linked only when their links can have changed: a new day, a day that
--   starts earlier, or a day that ends later while a later day exists.

-- Serialise with writers while the trigger is swapped, so no insert is counted twice or not
-- at all (see the same lock in cdp-rollups.sql).
do $$ begin lock table cdp_events in share row exclusive mode; end $$;

-- Events stored but not yet in the rollups: the columns the rollups read, with the tunnel
-- and the A/B test already taken out of `properties`.
create table if not exists cdp_rollup_pending (
    brand_id          text        not null,
    seq               bigint      not null,
    anonymous_id      text        not null,
    customer_id       text,
    session_id        text,
    event_type        text        not null,
    "timestamp"       timestamptz not null,
    predicted_persona text,
    explicit_persona  text,
    current_stage     text,
    tunnel            text        not null,
    test_id           text,
    variant           text
);

-- Every event passes through the queue, so it is vacuumed as soon as a few thousand rows are
-- dead rather than at a fifth of its (near-empty) size; `cdp serve` also vacuums it itself
-- after every 100,000 folded events (cdp-api/src/rollups.rs), since autovacuum visits a
-- database at most once a minute.
alter table cdp_rollup_pending set (autovacuum_vacuum_scale_factor = 0,
                                    autovacuum_vacuum_threshold = 5000);

-- One row; a flush locks it for its whole transaction and records what it did.
create table if not exists cdp_rollup_flusher (
    id           boolean     primary key default true check (id),
    flushed_at   timestamptz,
    flushed_rows bigint      not null default 0
);
insert into cdp_rollup_flusher (id) values (true) on conflict (id) do nothing;

create or replace function cdp_rollup_enqueue() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into cdp_rollup_pending (brand_id, seq, anonymous_id, customer_id, session_id,
        event_type, "timestamp", predicted_persona, explicit_persona, current_stage, tunnel,
        test_id, variant)
    select brand_id, seq, anonymous_id, customer_id, session_id, event_type, "timestamp",
           predicted_persona, explicit_persona, current_stage,
           case when event_type in ('tunnel_viewed', 'hero_cta_clicked')
                then coalesce(properties ->> 'tunnel', '') else '' end,
           case when event_type in ('ab_test_exposure', 'ab_test_conversion')
                then properties ->> 'test_id' end,
           case when event_type in ('ab_test_exposure', 'ab_test_conversion')
                then properties ->> 'variant' end
    from inserted;
    return null;
end;
$$;

-- Folds a batch of pending events into every rollup. Called by cdp_rollup_flush, which holds
-- the flusher lock; not meant to be called on its own.
create or replace function cdp_rollup_apply(folded cdp_rollup_pending[]) returns void
language plpgsql
set search_path from current
as $$
declare
    relink_brands   text[];
    relink_visitors text[];
begin
    -- Each (visitor, day) of the batch widens its row; the latest event (ties: the one stored
    -- last) sets the persona and stage. The same statement reads the rows as they were before
    -- (every part of one statement sees one snapshot) to find the visitors whose neighbouring
    -- days need re-linking.
    with days as materialized (
        select distinct on (brand_id, day, anonymous_id)
               brand_id, day, anonymous_id,
               min("timestamp") over w as first_at, max("timestamp") over w as last_at,
               coalesce(predicted_persona, '') as predicted_persona, explicit_persona,
               coalesce(current_stage, '') as current_stage
        from (select *, ("timestamp" at time zone 'UTC')::date as day from unnest(folded) inserted) e
        window w as (partition by brand_id, day, anonymous_id)
        order by brand_id, day, anonymous_id, "timestamp" desc, seq desc
    ), upsert as (
        insert into cdp_rollup_visitor_days as d (brand_id, day, anonymous_id, first_at,
            last_at, predicted_persona, explicit_persona, current_stage)
        select brand_id, day, anonymous_id, first_at, last_at, predicted_persona,
               explicit_persona, current_stage
        from days
        order by brand_id, day, anonymous_id
        on conflict (brand_id, day, anonymous_id) do update set
            first_at = least(d.first_at, excluded.first_at),
            last_at = greatest(d.last_at, excluded.last_at),
            predicted_persona = case when excluded.last_at >= d.last_at
                                     then excluded.predicted_persona else d.predicted_persona end,
            explicit_persona = case when excluded.last_at >= d.last_at
                                    then excluded.explicit_persona else d.explicit_persona end,
            current_stage = case when excluded.last_at >= d.last_at
                                 then excluded.current_stage else d.current_stage end
    )
    select array_agg(b.brand_id), array_agg(b.anonymous_id)
    into relink_brands, relink_visitors
    from days b
    left join cdp_rollup_visitor_days o
      on o.brand_id = b.brand_id and o.day = b.day and o.anonymous_id = b.anonymous_id
    where o.day is null
       or b.first_at < o.first_at
       or (b.last_at > o.last_at
           and exists (select 1 from cdp_rollup_visitor_days x
                       where x.brand_id = b.brand_id and x.anonymous_id = b.anonymous_id
                         and x.day > b.day));

    -- Re-link those visitors' days (a few rows each, found through the visitor index),
    -- writing only the rows whose neighbours changed.
    if relink_visitors is not null then
        update cdp_rollup_visitor_days d
        set prev_at = l.prev_at, next_at = l.next_at
        from (select distinct u.brand_id, u.anonymous_id
              from unnest(relink_brands, relink_visitors) as u(brand_id, anonymous_id)) v
        cross join lateral (
            select x.day, lag(x.last_at) over o as prev_at, lead(x.first_at) over o as next_at
            from cdp_rollup_visitor_days x
            where x.brand_id = v.brand_id and x.anonymous_id = v.anonymous_id
            window o as (order by x.day)
        ) l
        where d.brand_id = v.brand_id and d.anonymous_id = v.anonymous_id and d.day = l.day
          and (d.prev_at is distinct from l.prev_at or d.next_at is distinct from l.next_at);
    end if;

    insert into cdp_rollup_identities as i (brand_id, anonymous_id, identified_at)
    select brand_id, anonymous_id, min("timestamp")
    from unnest(folded) inserted
    where customer_id is not null or event_type in ('email_signup', 'identify')
    group by 1, 2
    order by 1, 2
    on conflict (brand_id, anonymous_id)
    do update set identified_at = excluded.identified_at
    where excluded.identified_at < i.identified_at;

    insert into cdp_rollup_ab as a (brand_id, test_id, variant, anonymous_id, exposed_at,
        converted_at)
    select brand_id, test_id, variant, anonymous_id,
           min("timestamp") filter (where event_type = 'ab_test_exposure'),
           min("timestamp") filter (where event_type = 'ab_test_conversion')
    from unnest(folded) inserted
    where event_type in ('ab_test_exposure', 'ab_test_conversion')
      and test_id is not null and variant is not null
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4
    on conflict (brand_id, test_id, variant, anonymous_id) do update set
        exposed_at = least(a.exposed_at, excluded.exposed_at),
        converted_at = least(a.converted_at, excluded.converted_at);

    -- Sessions the batch starts (or starts earlier): each counts on its new day and no longer
    -- on its old one, and its row takes the new start.
    with starts as (
        select brand_id, anonymous_id, coalesce(session_id, '') as session_id,
               min("timestamp") as started_at
        from unnest(folded) inserted group by 1, 2, 3
    ), moved as materialized (
        select n.brand_id, n.anonymous_id, n.session_id, n.started_at as new_at,
               o.started_at as old_at
        from starts n
        left join cdp_rollup_sessions o
          on o.brand_id = n.brand_id and o.anonymous_id = n.anonymous_id
         and o.session_id = n.session_id
        where o.started_at is null or n.started_at < o.started_at
    ), sessions as (
        insert into cdp_rollup_sessions as s (brand_id, anonymous_id, session_id, started_at)
        select brand_id, anonymous_id, session_id, new_at
        from moved
        order by 1, 2, 3
        on conflict (brand_id, anonymous_id, session_id)
        do update set started_at = excluded.started_at where excluded.started_at < s.started_at
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

    -- Events per hour, then per day from those hours.
    with hours as materialized (
        select brand_id, date_trunc('hour', "timestamp", 'UTC') as hour, event_type,
               coalesce(predicted_persona, '') as persona,
               tunnel,
               count(*) as events
        from unnest(folded) inserted
        group by 1, 2, 3, 4, 5
    ), hourly as (
        insert into cdp_rollup_hourly as r (brand_id, hour, event_type, persona, tunnel, events)
        select brand_id, hour, event_type, persona, tunnel, events
        from hours
        order by 1, 2, 3, 4, 5
        on conflict (brand_id, hour, event_type, persona, tunnel)
        do update set events = r.events + excluded.events
    )
    insert into cdp_rollup_daily as r (brand_id, day, event_type, persona, tunnel, events)
    select brand_id, (hour at time zone 'UTC')::date, event_type, persona, tunnel,
           sum(events)::bigint
    from hours
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (brand_id, day, event_type, persona, tunnel)
    do update set events = r.events + excluded.events;

end;
$$;

create or replace function cdp_rollup_flush() returns bigint
language plpgsql
set search_path from current
as $$
declare
    batch cdp_rollup_pending[];
begin
    -- An empty queue takes no lock and writes nothing (every dashboard read calls this).
    if not exists (select 1 from cdp_rollup_pending) then
        return 0;
    end if;
    perform 1 from cdp_rollup_flusher for update;
    -- Exactly the rows this statement deletes are folded: an event committed meanwhile stays
    -- pending for the next flush.
    with taken as (delete from cdp_rollup_pending p returning p)
    select array_agg(taken.p) into batch from taken;
    if batch is null then
        return 0;
    end if;
    perform cdp_rollup_apply(batch);
    update cdp_rollup_flusher
    set flushed_at = now(), flushed_rows = flushed_rows + cardinality(batch);
    return cardinality(batch);
end;
$$;

drop trigger if exists cdp_events_rollup on cdp_events;
drop function if exists cdp_rollup_events();
drop trigger if exists cdp_events_rollup_enqueue on cdp_events;
create trigger cdp_events_rollup_enqueue
    after insert on cdp_events
    referencing new table as inserted
    for each statement execute function cdp_rollup_enqueue();

-- The functions are for the server's own role (and pg_cron), not for API callers: PostgREST
-- exposes every function it can see as an RPC. (Row level security would already turn anon
-- and authenticated away; this says so twice.)
revoke execute on function cdp_rollup_flush() from public;
revoke execute on function cdp_rollup_apply(cdp_rollup_pending[]) from public;

-- Row level security on, no policies, as for every CDP table (server-only).
alter table cdp_rollup_pending enable row level security;
alter table cdp_rollup_flusher enable row level security;
