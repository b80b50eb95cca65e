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
    Migration {
        version: 5,
        name: "counting",
        sql: include_str!("../../docs/schemas/cdp-counting.sql"),
    },
    Migration {
        version: 6,
        name: "identity",
        sql: include_str!("../../docs/schemas/cdp-identity.sql"),
    },
    Migration {
        version: 7,
        name: "erasure",
        sql: include_str!("../../docs/schemas/cdp-erasure.sql"),
    },
    Migration {
        version: 8,
        name: "person-id",
        sql: include_str!("../../docs/schemas/cdp-person-id.sql"),
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
    Migration {
        version: 6,
        name: "drop-recounts",
        sql: include_str!("../migrations/sqlite/0006_drop_recounts.sql"),
    },
    Migration {
        version: 7,
        name: "identity",
        sql: include_str!("../migrations/sqlite/0007_identity.sql"),
    },
    Migration {
        version: 8,
        name: "erasure",
        sql: include_str!("../migrations/sqlite/0008_erasure.sql"),
    },
    Migration {
        version: 9,
        name: "person-id",
        sql: include_str!("../migrations/sqlite/0009_person_id.sql"),
    },
];

/// The migrations of SQLite's rollup file (the rollups kept apart from the events since the
/// event file's 0005).
pub const SQLITE_ROLLUPS: &[Migration] = &[
    Migration {
        version: 1,
        name: "rollup-tables",
        sql: include_str!("../migrations/sqlite-rollups/0001_rollup_tables.sql"),
    },
    Migration {
        version: 2,
        name: "fold-mark",
        sql: include_str!("../migrations/sqlite-rollups/0002_fold_mark.sql"),
    },
    Migration {
        version: 3,
        name: "counting",
        sql: include_str!("../migrations/sqlite-rollups/0003_counting.sql"),
    },
];

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

    /// The column names of `create table if not exists {table} (...)` in `sql`.
    fn columns(sql: &str, table: &str) -> Vec<String> {
        let start = sql
            .find(&format!("create table if not exists {table} ("))
            .unwrap_or_else(|| panic!("{table} not defined"));
        let body = &sql[start..];
        let body = &body[..body.find("\n)").unwrap_or(body.len())];
        body.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| *w != "primary")
            .map(|w| w.trim_end_matches(',').to_owned())
            .collect()
    }

    #[test]
    fn both_backends_keep_the_same_rollups() {
        for table in crate::analytics::ROLLUP_TABLES {
            assert_eq!(
                columns(POSTGRES[4].sql, table),
                columns(SQLITE_ROLLUPS[2].sql, table),
                "{table}"
            );
        }
    }

    #[test]
    fn no_counting_rule_is_left_in_the_latest_migrations() {
        for sql in [POSTGRES[4].sql, SQLITE_ROLLUPS[2].sql, SQLITE[5].sql] {
            for name in cdp_core::EventType::ALL {
                assert!(!sql.contains(&format!("'{}'", name.as_str())), "{name:?}");
            }
            for path in cdp_core::counting::PROPERTIES {
                assert!(!sql.contains(&format!("'{path}'")), "{path}");
            }
        }
    }

    #[test]
    fn versions_ascend_without_gaps() {
        for list in [POSTGRES, SQLITE, SQLITE_ROLLUPS] {
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
