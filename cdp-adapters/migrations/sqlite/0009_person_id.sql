-- The person a browser's profile belongs to (see docs/schemas/cdp-person-id.sql): derived from
-- the identity log and stamped by the collector; the profile upsert never writes it.

alter table cdp_profiles add column person_id text;
create index if not exists cdp_profiles_person_id_idx on cdp_profiles (brand_id, person_id)
    where person_id is not null;
