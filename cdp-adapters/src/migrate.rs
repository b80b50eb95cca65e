//! Versioned, forward-only schema migrations for each SQL backend. Applied versions are
//! recorded in `schema_migrations`; applying is idempotent, and on Postgres concurrent runs
//! are serialised by a transaction-scoped advisory lock (which, unlike a session lock, also
//! works through a transaction pooler).
//!
//! A migration is never edited once released: a change is a new file with the next version.

/// One migration: a version, a name and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in ascending order; recorded in `schema_migrations.version`.
    pub version: i64,
    /// Short name, recorded alongside the version.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// The Postgres migrations. Their one copy is the published schema in `docs/schemas/`, which a
/// Supabase user can also paste into the SQL editor, so the two cannot drift.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../docs/schemas/cdp-events.sql"),
    },
    Migration {
        version: 2,
        name: "rollups",
        sql: include_str!("../../docs/schemas/cdp-rollups.sql"),
    },
    Migration {
        version: 3,
        name: "rollup-maintenance",
        sql: include_str!("../../docs/schemas/cdp-rollup-maintenance.sql"),
    },
    Migration {
        version: 4,
        name: "write-path",
        sql: include_str!("../../docs/schemas/cdp-write-path.sql"),
    },
];

/// The SQLite migrations: the same tables in SQLite's types.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "rollups",
        sql: include_str!("../migrations/sqlite/0002_rollups.sql"),
    },
    Migration {
        version: 3,
        name: "rollup-queue",
        sql: include_str!("../migrations/sqlite/0003_rollup_queue.sql"),
    },
    Migration {
        version: 4,
        name: "rollup-mark",
        sql: include_str!("../migrations/sqlite/0004_rollup_mark.sql"),
    },
    Migration {
        version: 5,
        name: "rollups-apart",
        sql: include_str!("../migrations/sqlite/0005_rollups_apart.sql"),
    },
];

/// Where the rollup tables' definitions end in the event file's migration 0002 (the recount
/// views, the backfill and the triggers follow; they belong to the event file).
const ROLLUP_TABLES_END: &str = "-- The recounts:";

/// The migrations of SQLite's rollup file (the rollups kept apart from the events since the
/// event file's 0005). Its tables are the ones the event file's 0002 defines, taken from that
/// one text so the two cannot differ; then the fold mark.
pub fn sqlite_rollups() -> [Migration; 2] {
    let tables = SQLITE[1].sql;
    let end = tables.find(ROLLUP_TABLES_END).unwrap_or(tables.len());
    [
        Migration {
            version: 1,
            name: "rollup-tables",
            sql: &tables[..end],
        },
        Migration {
            version: 2,
            name: "fold-mark",
            sql: include_str!("../migrations/sqlite-rollups/0002_fold_mark.sql"),
        },
    ]
}

/// The advisory lock key every Postgres `migrate()` takes (an arbitrary constant: "cdpmigr").
pub const POSTGRES_LOCK_KEY: i64 = 0x0063_6470_6d69_6772;

/// The bookkeeping table, the same on both backends.
pub const SCHEMA_MIGRATIONS: &str = "create table if not exists schema_migrations (
    version    bigint primary key,
    name       text   not null,
    applied_at text   not null default current_timestamp
)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_define_the_same_rollups() {
        for table in crate::analytics::ROLLUP_TABLES {
            for list in [POSTGRES, SQLITE] {
                let sql = list[1].sql;
                assert!(
                    sql.contains(&format!("create table if not exists {table} (")),
                    "{table}"
                );
                assert!(
                    sql.contains(&format!("{table}_recount as")),
                    "{table}_recount"
                );
            }
        }
    }

    #[test]
    fn the_rollup_file_takes_only_the_tables_of_0002() {
        let [tables, _] = sqlite_rollups();
        for table in crate::analytics::ROLLUP_TABLES {
            assert!(tables
                .sql
                .contains(&format!("create table if not exists {table} (")));
        }
        for other in [
            "create view",
            "create trigger",
            "\nfrom cdp_events",
            "insert into",
        ] {
            assert!(!tables.sql.contains(other), "{other}");
        }
    }

    #[test]
    fn versions_ascend_without_gaps() {
        for list in [POSTGRES, SQLITE, &sqlite_rollups()] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            }
        }
    }

    #[test]
    fn postgres_schema_has_every_index_the_spec_lists() {
        let sql = POSTGRES[0].sql;
        for needle in [
            "unique (brand_id, event_id)",
            "on cdp_events (brand_id, \"timestamp\" desc)",
            "on cdp_events (event_type)",
            "on cdp_events (predicted_persona)",
            "on cdp_events (anonymous_id)",
            "on cdp_events (current_stage)",
            "on cdp_searches (brand_id, searched_at desc)",
            "on cdp_searches (query)",
            "unique (brand_id, anonymous_id)",
            "on cdp_profiles (customer_id)",
            "on cdp_profiles (email)",
            "on cdp_profiles (predicted_persona)",
            "alter table cdp_events enable row level security",
            "alter table cdp_searches enable row level security",
            "alter table cdp_profiles enable row level security",
        ] {
            assert!(sql.contains(needle), "missing: {needle}");
        }
        assert!(
            !sql.contains("create policy"),
            "the stance is RLS with no policies"
        );
    }
}
