-- The fold reads new events straight from cdp_events instead of a queue (replaces 0003's
-- trigger and `cdp_rollup_pending`). The fold (cdp-adapters/src/sqlite_fold.sql) takes every
-- event whose `seq` is above the mark kept here and moves the mark to the greatest `seq` it
-- took, in the same transaction as the rollups it changed.
--
-- Why this is sound on SQLite and not on Postgres: the store has one writer, `seq` is an
-- autoincrement rowid (never reused), and a transaction's rows are visible only once it
-- commits, all of them at once; so the committed events are exactly `seq` 1..max with gaps
-- only where nothing was ever stored, and "above the mark" is exactly "not folded yet".
-- Postgres has concurrent writers whose sequence values commit out of order, so it keeps its
-- queue.
--
-- Why: the queue cost every stored event a second insert (the trigger's row, with its own
-- pages written to the WAL at each commit) on the one write connection, and every fold a
-- delete of the whole queue.

create table if not exists cdp_rollup_mark (
    id         integer primary key check (id = 1),
    folded_seq integer not null
);

-- Events still queued have not been folded: the mark sits just below the first of them, or,
-- with an empty queue, at the last stored event.
insert into cdp_rollup_mark (id, folded_seq)
select 1, coalesce((select min(seq) - 1 from cdp_rollup_pending),
                   (select max(seq) from cdp_events),
                   0)
where not exists (select 1 from cdp_rollup_mark);

drop trigger if exists cdp_events_rollup_enqueue;
drop table if exists cdp_rollup_pending;
