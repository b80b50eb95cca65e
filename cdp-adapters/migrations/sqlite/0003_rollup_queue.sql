-- The rollups kept off the insert path, as on Postgres (docs/schemas/cdp-rollup-maintenance.sql):
-- an insert into cdp_events queues the columns the rollups read in `cdp_rollup_pending`, and a
-- fold (cdp-adapters/src/sqlite_fold.sql, run by `SqliteStore::flush_rollups`) takes the whole
-- queue into the rollups at once. The rollups and their `*_recount` views are unchanged.
--
-- Why: the row triggers of 0002 ran about a dozen statements and fifteen index seeks for every
-- event inside the writer's transaction; a fold runs a dozen statements for thousands of events.

create table if not exists cdp_rollup_pending (
    seq               integer primary key,
    brand_id          text not null,
    anonymous_id      text not null,
    customer_id       text,
    session_id        text,
    event_type        text not null,
    "timestamp"       text not null,
    predicted_persona text,
    explicit_persona  text,
    current_stage     text,
    tunnel            text not null,
    test_id           text,
    variant           text
);

drop trigger if exists cdp_events_rollup_hourly;
drop trigger if exists cdp_events_rollup_visitor_days;
drop trigger if exists cdp_events_rollup_sessions;
drop trigger if exists cdp_events_rollup_identities;
drop trigger if exists cdp_events_rollup_ab;

drop trigger if exists cdp_events_rollup_enqueue;
create trigger cdp_events_rollup_enqueue after insert on cdp_events for each row
begin
    insert into cdp_rollup_pending (brand_id, seq, anonymous_id, customer_id, session_id,
        event_type, "timestamp", predicted_persona, explicit_persona, current_stage, tunnel,
        test_id, variant)
    values (new.brand_id, new.seq, new.anonymous_id, new.customer_id, new.session_id,
            new.event_type, new."timestamp", new.predicted_persona, new.explicit_persona,
            new.current_stage,
            case when new.event_type in ('tunnel_viewed', 'hero_cta_clicked')
                 then coalesce(cast(json_extract(new.properties, '$.tunnel') as text), '')
                 else '' end,
            case when new.event_type in ('ab_test_exposure', 'ab_test_conversion')
                  and json_extract(new.properties, '$.variant') is not null
                 then cast(json_extract(new.properties, '$.test_id') as text) end,
            case when new.event_type in ('ab_test_exposure', 'ab_test_conversion')
                  and json_extract(new.properties, '$.test_id') is not null
                 then cast(json_extract(new.properties, '$.variant') as text) end);
end;
