-- cdp-person-id.sql: the person a browser's profile belongs to, for Postgres and Supabase.
-- This file is migration 0008 of cdp-adapters (`cdp migrate` embeds this very file, see
-- cdp-adapters/src/migrate.rs). Apply it after cdp-erasure.sql; running it twice is safe.
--
-- `person_id` is derived: `cdp_core::identity::resolve` makes people of the identity log, and
-- the collector stamps each linked browser's profile with its person's id (within a minute of
-- a link, and at once after an admin merge, split or erasure); a browser no link touched has
-- none. The profile upsert never writes it, so a profile saved between two stamps keeps the
-- last one. Query people in SQL by grouping profiles on it; the identity log stays the truth.

alter table cdp_profiles add column if not exists person_id text;
create index if not exists cdp_profiles_person_id_idx on cdp_profiles (brand_id, person_id)
    where person_id is not null;
