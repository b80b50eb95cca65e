-- The rollup file's fold mark (see migration 0004 of the event file for why a mark on `seq`
-- is exact in SQLite): every event of the event file with a greater `seq` is not folded yet.
-- It lives in the same file as the rollups, so a fold moves it in the same transaction as
-- the rollups it changed.

create table if not exists cdp_rollup_mark (
    id         integer primary key check (id = 1),
    folded_seq integer not null
);
insert into cdp_rollup_mark (id, folded_seq)
select 1, 0 where not exists (select 1 from cdp_rollup_mark);
