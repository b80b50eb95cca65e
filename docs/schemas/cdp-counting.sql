-- cdp-counting.sql: the dashboard rollups as keyed counters and facts, folded by cdp-core.
-- Migration 0005 of cdp-adapters (`cdp migrate` embeds this very file, see
-- cdp-adapters/src/migrate.rs). Apply it after cdp-write-path.sql, with `cdp migrate` or in the
-- Supabase SQL editor; running it twice is safe.
--
-- Why: migrations 0002 and 0003 kept seven rollup tables with SQL folds, recount views and the
-- counting rules (which event types, which properties) written out in SQL, once per dialect.
-- The rules now live in one place, cdp-core's `counting` module, which turns stored events into
-- counter deltas and fact upserts; the database only keeps them:
-- * `cdp_counters`: sums per brand, counter, time bucket and up to three dimension values,
--   only ever added to (a row at zero is deleted);
-- * `cdp_facts`: per-visitor state (a day, a session, an identification, an A/B cohort),
--   replaced whole; what each column means per kind is documented in cdp-core
--   (`counting::keep::FactKind`).
--
-- Upgrade: the old rollups are dropped, and every stored event is queued again, so the first
-- fold after this migration (`cdp serve` runs one at start and before every dashboard read)
-- recounts every stored event into the new tables. Nothing is copied from the old tables.
--
-- Security stance as in cdp-events.sql: row level security on, no policies (server-only).

-- Serialise with writers while the queue and its trigger are swapped, so no insert is lost
-- between them.
do $$ begin lock table cdp_events in share row exclusive mode; end $$;

drop trigger if exists cdp_events_rollup_enqueue on cdp_events;
drop trigger if exists cdp_events_rollup on cdp_events;
drop function if exists cdp_rollup_flush();
drop function if exists cdp_rollup_apply(cdp_rollup_pending[]);
drop function if exists cdp_rollup_enqueue();
drop function if exists cdp_rollup_events();
drop view if exists cdp_rollup_hourly_recount, cdp_rollup_daily_recount,
    cdp_rollup_visitor_days_recount, cdp_rollup_sessions_recount,
    cdp_rollup_session_days_recount, cdp_rollup_identities_recount, cdp_rollup_ab_recount;
drop table if exists cdp_rollup_hourly, cdp_rollup_daily, cdp_rollup_visitor_days,
    cdp_rollup_sessions, cdp_rollup_session_days, cdp_rollup_identities, cdp_rollup_ab;

create table if not exists cdp_counters (
    brand_id text        not null,
    counter  text        not null,
    bucket   timestamptz not null,
    dim1     text        not null,
    dim2     text        not null,
    dim3     text        not null,
    value    bigint      not null,
    primary key (brand_id, counter, bucket, dim1, dim2, dim3)
);

create table if not exists cdp_facts (
    brand_id text not null,
    entity   text not null,
    kind     text not null,
    part     text not null,
    at       timestamptz,
    t1       timestamptz,
    t2       timestamptz,
    t3       timestamptz,
    g1       text,
    g2       text,
    g3       text,
    primary key (brand_id, entity, kind, part)
);
-- Range reads (facts of a kind by `at`) read this index alone.
create index if not exists cdp_facts_at_idx on cdp_facts (brand_id, kind, at)
    include (t1, t2, t3, g1, g2, g3);

-- The queue of stored events not yet folded: only which ones (the fold reads the events).
-- An insert into cdp_events queues its rows in the same transaction, so an event is pending
-- exactly when it is stored, whatever commits first.
do $$
begin
    if exists (select 1 from information_schema.columns
               where table_schema = current_schema() and table_name = 'cdp_rollup_pending'
                 and column_name = 'event_type') then
        drop table cdp_rollup_pending;
    end if;
end;
$$;
create table if not exists cdp_rollup_pending (
    seq bigint not null
);
alter table cdp_rollup_pending set (autovacuum_vacuum_scale_factor = 0,
                                    autovacuum_vacuum_threshold = 5000);

create or replace function cdp_rollup_enqueue() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into cdp_rollup_pending (seq) select seq from inserted;
    return null;
end;
$$;
create trigger cdp_events_rollup_enqueue
    after insert on cdp_events
    referencing new table as inserted
    for each statement execute function cdp_rollup_enqueue();

-- Recount everything into the new tables at the next fold (only when they are empty, so
-- running this file twice queues nothing twice).
insert into cdp_rollup_pending (seq)
select seq from cdp_events
where not exists (select 1 from cdp_counters) and not exists (select 1 from cdp_facts)
  and not exists (select 1 from cdp_rollup_pending);

-- The flusher row (migration 0003) still serialises folds: a fold locks it for its whole
-- transaction.
create table if not exists cdp_rollup_flusher (
    id           boolean     primary key default true check (id),
    flushed_at   timestamptz,
    flushed_rows bigint      not null default 0
);
insert into cdp_rollup_flusher (id) values (true) on conflict (id) do nothing;

-- The queue's trigger function is for the table owner only; Supabase grants new functions to
-- `anon` and `authenticated` by name, so those grants go too (as in cdp-write-path.sql).
do $$
declare
    r text;
begin
    revoke execute on function cdp_rollup_enqueue() from public;
    foreach r in array array['anon', 'authenticated'] loop
        if exists (select 1 from pg_roles where rolname = r) then
            execute format('revoke execute on function cdp_rollup_enqueue() from %I', r);
        end if;
    end loop;
end;
$$;

alter table cdp_counters enable row level security;
alter table cdp_facts enable row level security;
alter table cdp_rollup_pending enable row level security;
alter table cdp_rollup_flusher enable row level security;
