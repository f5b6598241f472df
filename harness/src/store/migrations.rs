//! The schema migrations of `harness/migrations/`, compiled into the binary.
//!
//! Listed by hand rather than through `sqlx::migrate!()`: that macro needs sqlx's `macros`
//! feature, whose compile-time crates build a second sqlx and SQLite driver for the host, the
//! longest part of a fresh build of the CLI. Each migration is what sqlx's own directory reader
//! makes of its file (version from the name, description with `_` as spaces, the file's text,
//! its checksum), so databases migrated by either agree; a test checks the list against the
//! folder.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// A migration file's stem and text.
macro_rules! migration {
    ($stem:literal) => {
        (
            $stem,
            include_str!(concat!("../../migrations/", $stem, ".sql")),
        )
    };
}

/// The files of `harness/migrations/`, in order: `VERSION_DESCRIPTION.sql`.
const MIGRATIONS: [(&str, &str); 7] = [
    migration!("0001_initial"),
    migration!("0002_current_results"),
    migration!("0003_commit_time"),
    migration!("0004_split_protocol"),
    migration!("0005_submissions"),
    migration!("0006_dismissed"),
    migration!("0007_detached_runs"),
];

/// The compiled-in migrations as a sqlx migration source.
#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async { Ok(migrations()) })
    }
}

fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|&(stem, sql)| {
            let (version, description) = stem.split_once('_').expect("VERSION_DESCRIPTION");
            Migration::new(
                version.parse().expect("a numeric version"),
                Cow::Owned(description.replace('_', " ")),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                sql.starts_with("-- no-transaction"),
            )
        })
        .collect()
}

/// The migrator that brings a results database to the current schema.
pub(super) async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the folder is listed, in order, under the version and description sqlx's
    /// directory reader gives it, with the same SQL and checksum.
    #[tokio::test]
    async fn the_list_is_the_migrations_folder() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let from_folder = Migrator::new(folder.as_path()).await.unwrap();
        let listed = migrator().await.unwrap();
        let summary = |migrator: &Migrator| {
            let fields =
                |m: &Migration| (m.version, m.description.to_string(), m.checksum.to_vec());
            migrator.iter().map(fields).collect::<Vec<_>>()
        };
        assert_eq!(summary(&listed), summary(&from_folder));
    }
}
