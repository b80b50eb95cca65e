-- cdp-identity.sql: the identity log, for Postgres and Supabase. This file is migration 0006
-- of cdp-adapters (`cdp migrate` embeds this very file, see cdp-adapters/src/migrate.rs).
-- Apply it after cdp-counting.sql, with `cdp migrate` or in the Supabase SQL editor; running
-- it twice is safe.
--
-- Identity is kept as edges between identifiers (a browser's anonymous id, an email, a
-- customer id), never as a rewrite of stored rows: `cdp_core::identity::resolve` computes the
-- people from the edges each time, so a merge is an edge and a split is an exclusion edge.
-- The collector writes the edges its events make in the same statement as the events (one
-- transaction); admin merges and splits add edges of origin `admin`.
--
-- One row per pair of identifiers and kind: the earliest edge (by `at`, then `event_id`), kept
-- by an upsert that only ever moves a row earlier. Sides are in the core's canonical order
-- (a <= b). Values are stored as sent; the core normalises them and refuses junk when it
-- resolves, under the rules in force then.

create table if not exists cdp_identity_edges (
    brand_id   text        not null,
    edge_kind  text        not null check (edge_kind in ('link', 'exclude')),
    a_kind     text        not null,
    a_value    text        not null,
    b_kind     text        not null,
    b_value    text        not null,
    at         timestamptz not null,
    event_id   text        not null,
    origin     text        not null check (origin in ('event', 'admin')),
    primary key (brand_id, edge_kind, a_kind, a_value, b_kind, b_value)
);
-- Finding the edges of an identifier on either side (a person's lookup, an erase).
create index if not exists cdp_identity_edges_b_idx on cdp_identity_edges (brand_id, b_kind, b_value);

-- The batch insert of a batch that makes identity edges: the edges' upsert and then
-- `cdp_write_events`, in one call, so one statement and one transaction, and PL/pgSQL keeps
-- both statements' plans for the server session (the reason for migration 0004). The
-- collector calls it only for batches with edges; other batches call `cdp_write_events` as
-- before. A pair comes at most once per call (the core's `batch_edges`), as an upsert may touch
-- a row only once per statement.
create or replace function cdp_write_events_and_edges(
    deduplicate boolean,
    e_brand_id text[],
    e_event_id text[],
    e_event_type text[],
    e_anonymous_id text[],
    e_customer_id text[],
    e_session_id text[],
    e_timestamp timestamptz[],
    e_page_url text[],
    e_page_title text[],
    e_referrer text[],
    e_utm_source text[],
    e_utm_medium text[],
    e_utm_campaign text[],
    e_properties jsonb[],
    e_predicted_persona text[],
    e_persona_confidence real[],
    e_explicit_persona text[],
    e_current_stage text[],
    e_stage_confidence real[],
    e_persona_scores jsonb[],
    e_processed_at timestamptz[],
    e_id uuid[],
    s_brand_id text[],
    s_event_id text[],
    s_query text[],
    s_anonymous_id text[],
    s_results_count integer[],
    s_page_url text[],
    s_searched_at timestamptz[],
    i_brand_id text[],
    i_edge_kind text[],
    i_a_kind text[],
    i_a_value text[],
    i_b_kind text[],
    i_b_value text[],
    i_at timestamptz[],
    i_event_id text[],
    i_origin text[])
returns table (stored_brand_id text, stored_event_id text)
language plpgsql
set search_path from current
as $$
begin
    insert into cdp_identity_edges as t (
        brand_id, edge_kind, a_kind, a_value, b_kind, b_value, at, event_id, origin)
    select brand_id, edge_kind, a_kind, a_value, b_kind, b_value, at, event_id, origin
    from unnest(i_brand_id, i_edge_kind, i_a_kind, i_a_value, i_b_kind, i_b_value, i_at,
                i_event_id, i_origin)
        as i(brand_id, edge_kind, a_kind, a_value, b_kind, b_value, at, event_id, origin)
    on conflict (brand_id, edge_kind, a_kind, a_value, b_kind, b_value) do update
    set at = excluded.at, event_id = excluded.event_id, origin = excluded.origin
    where (excluded.at, excluded.event_id) < (t.at, t.event_id);
    return query select w.stored_brand_id, w.stored_event_id from cdp_write_events(
        deduplicate, e_brand_id, e_event_id, e_event_type, e_anonymous_id, e_customer_id, e_session_id, e_timestamp, e_page_url, e_page_title, e_referrer, e_utm_source, e_utm_medium, e_utm_campaign, e_properties, e_predicted_persona, e_persona_confidence, e_explicit_persona, e_current_stage, e_stage_confidence, e_persona_scores, e_processed_at, e_id, s_brand_id, s_event_id, s_query, s_anonymous_id, s_results_count, s_page_url, s_searched_at) w;
end;
$$;

-- For the server's own role only, as cdp_write_events (see cdp-write-path.sql).
do $$
declare
    f regprocedure;
    r text;
begin
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = current_schema()::regnamespace
          and p.proname = 'cdp_write_events_and_edges'
    loop
        execute format('revoke execute on function %s from public', f);
        foreach r in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = r) then
                execute format('revoke execute on function %s from %I', f, r);
            end if;
        end loop;
    end loop;
end;
$$;

-- Row level security on, no policies: only the service role (the collector) reads and writes.
alter table cdp_identity_edges enable row level security;
