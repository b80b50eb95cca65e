-- The `*_recount` views of migration 0002 go: they defined the rollups in SQL, and the rules
-- now live in cdp-core's `counting` module (the rollup file's migration 0003 replaces the
-- rollups themselves). The conformance suite compares the stored rollups with the core's fold
-- of every stored event instead.

drop view if exists cdp_rollup_hourly_recount;
drop view if exists cdp_rollup_daily_recount;
drop view if exists cdp_rollup_visitor_days_recount;
drop view if exists cdp_rollup_sessions_recount;
drop view if exists cdp_rollup_session_days_recount;
drop view if exists cdp_rollup_identities_recount;
drop view if exists cdp_rollup_ab_recount;
