-- cdp-write-path.sql: the collector's batch insert as a function, for Postgres and Supabase.
-- This file is migration 0004 of cdp-adapters (`cdp migrate` embeds this very file, see
-- cdp-adapters/src/migrate.rs). Apply it after cdp-rollup-maintenance.sql, with `cdp migrate`
-- or in the Supabase SQL editor; running it twice is safe.
--
-- Why: the collector used to send each batch as one `insert ... select from unnest($1, ...)`
-- statement. With the small commits that single-event traffic makes (a few dozen events
-- each), Postgres spent about a fifth of its time parsing, analysing and planning that
-- statement anew for every commit. A prepared statement would plan it once, but Supabase's
-- transaction pooler (and pgbouncer in transaction mode) cannot keep a prepared statement
-- for a client, so the collector does not use them. PL/pgSQL keeps the plans of a function's
-- statements for the life of the server session, whichever client calls it: through a pooler
-- too, each server connection plans them once. `cdp load --postgres-only`, three rounds of
-- each interleaved on one 2-core machine: 13,148-13,332 single-event requests per second
-- against 11,436-11,601 with the statement; batches of 50 unchanged.
--
-- What it does is what the statements did: insert the batch's events in input order
-- (`seq` follows the arrays), skipping rows already stored only when asked to (the
-- collector tries a plain insert first and, if a row is already stored, the whole statement
-- fails and stores nothing, and it calls again with `deduplicate`); return the key of every
-- row it stored; insert the batch's searches the same way. One call is one statement, so one
-- implicit transaction on the caller's connection.
--
-- A change of its arguments is a new migration (drop, then create), never an edit here.

create or replace function cdp_write_events(
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
    s_searched_at timestamptz[])
returns table (stored_brand_id text, stored_event_id text)
language plpgsql
set search_path from current
as $$
begin
    -- The same insert twice, so that each keeps its own cached plan.
    if deduplicate then
        return query
        insert into cdp_events as e (
            brand_id, event_id, event_type, anonymous_id, customer_id, session_id, "timestamp",
            page_url, page_title, referrer, utm_source, utm_medium, utm_campaign, properties,
            predicted_persona, persona_confidence, explicit_persona, current_stage,
            stage_confidence, persona_scores, processed_at, id)
        select
            brand_id, event_id, event_type, anonymous_id, customer_id, session_id, "timestamp",
            page_url, page_title, referrer, utm_source, utm_medium, utm_campaign, properties,
            predicted_persona, persona_confidence, explicit_persona, current_stage,
            stage_confidence, persona_scores, processed_at, id
        from unnest(
            e_brand_id, e_event_id, e_event_type, e_anonymous_id, e_customer_id, e_session_id,
            e_timestamp, e_page_url, e_page_title, e_referrer, e_utm_source, e_utm_medium,
            e_utm_campaign, e_properties, e_predicted_persona, e_persona_confidence,
            e_explicit_persona, e_current_stage, e_stage_confidence, e_persona_scores,
            e_processed_at, e_id)
        with ordinality as input(
            brand_id, event_id, event_type, anonymous_id, customer_id, session_id, "timestamp",
            page_url, page_title, referrer, utm_source, utm_medium, utm_campaign, properties,
            predicted_persona, persona_confidence, explicit_persona, current_stage,
            stage_confidence, persona_scores, processed_at, id, ord)
        order by ord
        on conflict (brand_id, event_id) do nothing
        returning e.brand_id, e.event_id;
    else
        return query
        insert into cdp_events as e (
            brand_id, event_id, event_type, anonymous_id, customer_id, session_id, "timestamp",
            page_url, page_title, referrer, utm_source, utm_medium, utm_campaign, properties,
            predicted_persona, persona_confidence, explicit_persona, current_stage,
            stage_confidence, persona_scores, processed_at, id)
        select
            brand_id, event_id, event_type, anonymous_id, customer_id, session_id, "timestamp",
            page_url, page_title, referrer, utm_source, utm_medium, utm_campaign, properties,
            predicted_persona, persona_confidence, explicit_persona, current_stage,
            stage_confidence, persona_scores, processed_at, id
        from unnest(
            e_brand_id, e_event_id, e_event_type, e_anonymous_id, e_customer_id, e_session_id,
            e_timestamp, e_page_url, e_page_title, e_referrer, e_utm_source, e_utm_medium,
            e_utm_campaign, e_properties, e_predicted_persona, e_persona_confidence,
            e_explicit_persona, e_current_stage, e_stage_confidence, e_persona_scores,
            e_processed_at, e_id)
        with ordinality as input(
            brand_id, event_id, event_type, anonymous_id, customer_id, session_id, "timestamp",
            page_url, page_title, referrer, utm_source, utm_medium, utm_campaign, properties,
            predicted_persona, persona_confidence, explicit_persona, current_stage,
            stage_confidence, persona_scores, processed_at, id, ord)
        order by ord
        returning e.brand_id, e.event_id;
    end if;
    if cardinality(s_event_id) > 0 then
        if deduplicate then
            insert into cdp_searches (
                brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at)
            select
                brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at
            from unnest(
                s_brand_id, s_event_id, s_query, s_anonymous_id, s_results_count, s_page_url,
                s_searched_at)
            with ordinality as input(
                brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at,
                ord)
            order by ord
            on conflict (brand_id, event_id) do nothing;
        else
            insert into cdp_searches (
                brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at)
            select
                brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at
            from unnest(
                s_brand_id, s_event_id, s_query, s_anonymous_id, s_results_count, s_page_url,
                s_searched_at)
            with ordinality as input(
                brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at,
                ord)
            order by ord;
        end if;
    end if;
end;
$$;

-- The write path and the rollup folds are for the server's own role (the table owner, which
-- `cdp serve` and the SQL editor connect as), not for API callers: PostgREST exposes every
-- function it can see as an RPC. Supabase grants EXECUTE on new functions to `anon` and
-- `authenticated` by name (its default privileges), which a revoke from PUBLIC leaves in
-- place, so those grants are revoked too where the roles exist. This also closes that gap for
-- migration 0003's fold functions. (Row level security would already turn those roles away
-- from the tables; this says so twice.)
do $$
declare
    f regprocedure;
    r text;
begin
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = current_schema()::regnamespace
          and p.proname in ('cdp_write_events', 'cdp_rollup_flush', 'cdp_rollup_apply')
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
