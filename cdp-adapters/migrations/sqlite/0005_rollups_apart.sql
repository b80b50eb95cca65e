-- The rollups move out of the event file into a file of their own beside it (the "rollup
-- file", cdp-adapters/src/sqlite.rs), folded by a connection of their own: a fold then never
-- holds the event file's one write connection, and the collector's commits go on while it
-- runs. The fold reads cdp_events from a snapshot of this file.
--
-- What stays here: cdp_events, cdp_searches, cdp_profiles and the `*_recount` views, which
-- define the rollups from cdp_events alone. What goes: the rollup tables and the fold mark.
-- Their contents are not copied: the rollup file starts with its mark at 0, and its first
-- fold recounts every stored event, which is by definition what the tables held.
--
-- Why: timed under `cdp load`, a fold took about as long per event as the insert itself, all
-- of it on the one write connection, which was the bottleneck while a core stood idle.

drop table if exists cdp_rollup_hourly;
drop table if exists cdp_rollup_daily;
drop table if exists cdp_rollup_visitor_days;
drop table if exists cdp_rollup_sessions;
drop table if exists cdp_rollup_session_days;
drop table if exists cdp_rollup_identities;
drop table if exists cdp_rollup_ab;
drop table if exists cdp_rollup_mark;
