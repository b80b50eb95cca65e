-- Folds the events stored since the last fold (`seq` above `cdp_rollup_mark.folded_seq`,
-- in order, at most {fold_events} of them) into the SQLite rollups and moves the mark past
-- them. Run in one write transaction of the rollup file's connection (cdp-adapters/src/
-- sqlite.rs), where `cdp_events` is the attached event file, read from one snapshot. The
-- event file has one writer and `seq` is its autoincrement rowid, so a snapshot holds every
-- event up to its greatest `seq`: the events taken are exactly the next ones after the mark.
-- The same rules as the Postgres fold (docs/schemas/cdp-rollup-maintenance.sql) in SQLite's
-- dialect; timestamps are RFC 3339 text, an hour is its first 13 characters and a day its
-- first 10. `where true` keeps SQLite from reading an upsert's `on conflict` as a join
-- constraint.

-- The new events, with only the columns the rollups read (and the tunnel, test and variant
-- out of the properties), taken once into memory (`temp_store = memory`).
create temp table if not exists cdp_fold_events (
    seq integer primary key, brand_id text, anonymous_id text, customer_id text,
    session_id text, event_type text, "timestamp" text, predicted_persona text,
    explicit_persona text, current_stage text, tunnel text, test_id text, variant text
);
delete from temp.cdp_fold_events;
insert into temp.cdp_fold_events
select seq, brand_id, anonymous_id, customer_id, session_id, event_type, "timestamp",
       predicted_persona, explicit_persona, current_stage,
       case when event_type in ('tunnel_viewed', 'hero_cta_clicked')
            then coalesce(cast(json_extract(properties, '$.tunnel') as text), '')
            else '' end,
       case when event_type in ('ab_test_exposure', 'ab_test_conversion')
             and json_extract(properties, '$.variant') is not null
            then cast(json_extract(properties, '$.test_id') as text) end,
       case when event_type in ('ab_test_exposure', 'ab_test_conversion')
             and json_extract(properties, '$.test_id') is not null
            then cast(json_extract(properties, '$.variant') as text) end
from cdp_events
where seq > (select folded_seq from cdp_rollup_mark)
order by seq
limit {fold_events};

create temp table if not exists cdp_fold_hours (
    brand_id text, hour text, event_type text, persona text, tunnel text, events integer,
    primary key (brand_id, hour, event_type, persona, tunnel)
) without rowid;
create temp table if not exists cdp_fold_days (
    brand_id text, day text, anonymous_id text, first_at text, last_at text,
    predicted_persona text, explicit_persona text, current_stage text,
    primary key (brand_id, day, anonymous_id)
) without rowid;
create temp table if not exists cdp_fold_relink (
    brand_id text, anonymous_id text, primary key (brand_id, anonymous_id)
) without rowid;
create temp table if not exists cdp_fold_moved (
    brand_id text, anonymous_id text, session_id text, new_at text, old_at text,
    primary key (brand_id, anonymous_id, session_id)
) without rowid;
delete from temp.cdp_fold_hours;
delete from temp.cdp_fold_days;
delete from temp.cdp_fold_relink;
delete from temp.cdp_fold_moved;

-- Events per hour, counted once; the days add up their hours.
insert into temp.cdp_fold_hours
select brand_id, substr("timestamp", 1, 13), event_type, coalesce(predicted_persona, ''),
       tunnel, count(*)
from temp.cdp_fold_events
group by 1, 2, 3, 4, 5;

insert into cdp_rollup_hourly (brand_id, hour, event_type, persona, tunnel, events)
select brand_id, hour, event_type, persona, tunnel, events from temp.cdp_fold_hours where true
on conflict (brand_id, hour, event_type, persona, tunnel)
do update set events = events + excluded.events;

insert into cdp_rollup_daily (brand_id, day, event_type, persona, tunnel, events)
select brand_id, substr(hour, 1, 10), event_type, persona, tunnel, sum(events)
from temp.cdp_fold_hours where true
group by 1, 2, 3, 4, 5
on conflict (brand_id, day, event_type, persona, tunnel)
do update set events = events + excluded.events;

-- Each (visitor, day) of the queue: its span, and its latest event's persona and stage
-- (latest by timestamp, then by storage order: the greatest timestamp-then-seq key, whose
-- row is found again by its seq).
insert into temp.cdp_fold_days
select g.brand_id, g.day, g.anonymous_id, g.first_at, g.last_at,
       coalesce(p.predicted_persona, ''), p.explicit_persona, coalesce(p.current_stage, '')
from (select brand_id, substr("timestamp", 1, 10) as day, anonymous_id,
             min("timestamp") as first_at, max("timestamp") as last_at,
             cast(substr(max("timestamp" || printf('%020d', seq)), -20) as integer) as latest
      from temp.cdp_fold_events
      group by 1, 2, 3) g
join temp.cdp_fold_events p on p.seq = g.latest;

-- Before the day rows change: the visitors whose neighbouring days can change (a new day, a
-- day that starts earlier, or one that ends later while a later day exists).
insert or ignore into temp.cdp_fold_relink
select b.brand_id, b.anonymous_id
from temp.cdp_fold_days b
left join cdp_rollup_visitor_days o
  on o.brand_id = b.brand_id and o.day = b.day and o.anonymous_id = b.anonymous_id
where o.day is null
   or b.first_at < o.first_at
   or (b.last_at > o.last_at
       and exists (select 1 from cdp_rollup_visitor_days x
                   indexed by cdp_rollup_visitor_days_visitor_idx
                   where x.brand_id = b.brand_id and x.anonymous_id = b.anonymous_id
                     and x.day > b.day));

insert into cdp_rollup_visitor_days (brand_id, day, anonymous_id, first_at, last_at,
    predicted_persona, explicit_persona, current_stage)
select brand_id, day, anonymous_id, first_at, last_at, predicted_persona, explicit_persona,
       current_stage
from temp.cdp_fold_days where true
on conflict (brand_id, day, anonymous_id) do update set
    first_at = min(first_at, excluded.first_at),
    predicted_persona = case when excluded.last_at >= last_at
                             then excluded.predicted_persona else predicted_persona end,
    explicit_persona = case when excluded.last_at >= last_at
                            then excluded.explicit_persona else explicit_persona end,
    current_stage = case when excluded.last_at >= last_at
                         then excluded.current_stage else current_stage end,
    last_at = max(last_at, excluded.last_at);

-- Re-link those visitors' days: each day's neighbours are the visitor's nearest other days.
update cdp_rollup_visitor_days as d
set prev_at = (select p.last_at from cdp_rollup_visitor_days p
               indexed by cdp_rollup_visitor_days_visitor_idx
               where p.brand_id = d.brand_id and p.anonymous_id = d.anonymous_id
                 and p.day < d.day
               order by p.day desc limit 1),
    next_at = (select n.first_at from cdp_rollup_visitor_days n
               indexed by cdp_rollup_visitor_days_visitor_idx
               where n.brand_id = d.brand_id and n.anonymous_id = d.anonymous_id
                 and n.day > d.day
               order by n.day limit 1)
where (d.brand_id, d.anonymous_id) in (select brand_id, anonymous_id from temp.cdp_fold_relink);

-- Sessions the queue starts (or starts earlier): each counts on its new day and no longer on
-- its old one, and its row takes the new start.
insert into temp.cdp_fold_moved
select n.brand_id, n.anonymous_id, n.session_id, n.started_at, o.started_at
from (select brand_id, anonymous_id, coalesce(session_id, '') as session_id,
             min("timestamp") as started_at
      from temp.cdp_fold_events group by 1, 2, 3) n
left join cdp_rollup_sessions o
  on o.brand_id = n.brand_id and o.anonymous_id = n.anonymous_id
 and o.session_id = n.session_id
where o.started_at is null or n.started_at < o.started_at;

insert into cdp_rollup_session_days (brand_id, day, sessions)
select brand_id, day, sum(d)
from (select brand_id, substr(new_at, 1, 10) as day, 1 as d from temp.cdp_fold_moved
      union all
      select brand_id, substr(old_at, 1, 10), -1 from temp.cdp_fold_moved
      where old_at is not null)
where true
group by 1, 2
on conflict (brand_id, day) do update set sessions = sessions + excluded.sessions;
delete from cdp_rollup_session_days where sessions = 0;

insert into cdp_rollup_sessions (brand_id, anonymous_id, session_id, started_at)
select brand_id, anonymous_id, session_id, new_at from temp.cdp_fold_moved where true
on conflict (brand_id, anonymous_id, session_id) do update set started_at = excluded.started_at
where excluded.started_at < started_at;

insert into cdp_rollup_identities (brand_id, anonymous_id, identified_at)
select brand_id, anonymous_id, min("timestamp")
from temp.cdp_fold_events
where customer_id is not null or event_type in ('email_signup', 'identify')
group by 1, 2
on conflict (brand_id, anonymous_id) do update set identified_at = excluded.identified_at
where excluded.identified_at < identified_at;

insert into cdp_rollup_ab (brand_id, test_id, variant, anonymous_id, exposed_at, converted_at)
select brand_id, test_id, variant, anonymous_id,
       min(case when event_type = 'ab_test_exposure' then "timestamp" end),
       min(case when event_type = 'ab_test_conversion' then "timestamp" end)
from temp.cdp_fold_events
where test_id is not null and variant is not null
group by 1, 2, 3, 4
on conflict (brand_id, test_id, variant, anonymous_id) do update set
    exposed_at = coalesce(min(exposed_at, excluded.exposed_at), exposed_at, excluded.exposed_at),
    converted_at = coalesce(min(converted_at, excluded.converted_at), converted_at,
                            excluded.converted_at);

update cdp_rollup_mark set folded_seq = (select max(seq) from temp.cdp_fold_events)
where exists (select 1 from temp.cdp_fold_events);
