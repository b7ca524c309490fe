//! Schema parity: `migrations/sqlite` and `migrations/postgres` give the
//! same tables, columns (equivalent types, nullability, defaults) and
//! indexes, read from each database's own catalogue after migrating both.
//! A migration written for one database only fails here.

use std::collections::BTreeMap;

use mite_perf::store::Store;
use sqlx::Row;

use crate::common::{temp_dir, Postgres};

/// One column as both databases can say it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    /// `integer`, `real`, `text` or `blob`: the family of its type.
    family: String,
    not_null: bool,
    /// Its default, as a plain literal (`0`, `'queued'`), if any.
    default: Option<String>,
}

/// An index over some columns, unique or not (its name aside: the
/// primary key's index has no name in common).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    columns: Vec<String>,
    unique: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    indexes: Vec<Index>,
    /// Foreign keys: (column, the table and column it refers to).
    references: Vec<(String, String, String)>,
}

type Schema = BTreeMap<String, Table>;

/// The family of a column type of either database.
fn family(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    let family = if t.contains("int") || t == "serial" || t == "bigserial" {
        "integer"
    } else if t.contains("real") || t.contains("double") || t.contains("float") || t == "numeric" {
        "real"
    } else if t.contains("char") || t == "text" || t.contains("json") {
        "text"
    } else if t == "blob" || t == "bytea" {
        "blob"
    } else if t.contains("bool") {
        "boolean"
    } else {
        return format!("other: {declared}");
    };
    family.to_string()
}

/// A default as a plain literal: PostgreSQL's casts (`'x'::text`) and
/// either database's parentheses taken off.
fn plain_default(default: Option<String>) -> Option<String> {
    let mut text = default?.trim().to_string();
    while text.starts_with('(') && text.ends_with(')') {
        text = text[1..text.len() - 1].trim().to_string();
    }
    if let Some((value, _cast)) = text.split_once("::") {
        text = value.trim().to_string();
    }
    // Identity columns: their sequence is PostgreSQL's own way of what
    // SQLite's INTEGER PRIMARY KEY does.
    if text.starts_with("nextval(") {
        return None;
    }
    Some(text.to_ascii_lowercase())
}

async fn sqlite_schema(url: &str) -> Schema {
    let pool = sqlx::SqlitePool::connect(url).await.expect("open");
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    let mut schema = Schema::new();
    for name in names {
        let mut table = Table::default();
        let rows = sqlx::query(&format!("PRAGMA table_info(\"{name}\")"))
            .fetch_all(&pool)
            .await
            .expect("columns");
        let mut key = Vec::new();
        for row in rows {
            let column: String = row.get("name");
            let declared: String = row.get("type");
            let pk: i64 = row.get("pk");
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            table.columns.insert(
                column,
                Column {
                    family: family(&declared),
                    // A primary key is never null, whatever SQLite says.
                    not_null: row.get::<i64, _>("notnull") == 1 || pk > 0,
                    default: plain_default(row.get("dflt_value")),
                },
            );
        }
        if !key.is_empty() {
            key.sort();
            table.indexes.push(Index {
                columns: key.into_iter().map(|(_, c)| c).collect(),
                unique: true,
            });
        }
        let indexes = sqlx::query(&format!("PRAGMA index_list(\"{name}\")"))
            .fetch_all(&pool)
            .await
            .expect("indexes");
        for index in indexes {
            let origin: String = index.get("origin");
            if origin == "pk" {
                continue;
            }
            let index_name: String = index.get("name");
            let columns: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT name FROM pragma_index_info('{index_name}') ORDER BY seqno"
            ))
            .fetch_all(&pool)
            .await
            .expect("index columns");
            table.indexes.push(Index {
                columns,
                unique: index.get::<i64, _>("unique") == 1,
            });
        }
        table.indexes.sort();
        let keys = sqlx::query(&format!("PRAGMA foreign_key_list(\"{name}\")"))
            .fetch_all(&pool)
            .await
            .expect("foreign keys");
        for key in keys {
            table
                .references
                .push((key.get("from"), key.get("table"), key.get("to")));
        }
        table.references.sort();
        schema.insert(name, table);
    }
    pool.close().await;
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, \
                is_nullable::text AS n, column_default::text AS d \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    let mut schema = Schema::new();
    for row in rows {
        let table: String = row.get("t");
        let declared: String = row.get("ty");
        schema.entry(table).or_default().columns.insert(
            row.get("c"),
            Column {
                family: family(&declared),
                not_null: row.get::<String, _>("n") == "NO",
                default: plain_default(row.get("d")),
            },
        );
    }
    let indexes = sqlx::query(
        "SELECT t.relname::text AS t, ix.indisunique AS u, \
                array_agg(a.attname::text ORDER BY k.ord) AS cols \
         FROM pg_index ix \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE ns.nspname = 'public' AND t.relname <> '_sqlx_migrations' \
         GROUP BY ix.indexrelid, t.relname, ix.indisunique",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    for row in indexes {
        let table: String = row.get("t");
        schema.entry(table).or_default().indexes.push(Index {
            columns: row.get("cols"),
            unique: row.get("u"),
        });
    }
    let keys = sqlx::query(
        "SELECT t.relname::text AS t, a.attname::text AS c, r.relname::text AS rt, \
                ra.attname::text AS rc \
         FROM pg_constraint k \
         JOIN pg_class t ON t.oid = k.conrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace \
         JOIN pg_class r ON r.oid = k.confrelid \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.conkey[1] \
         JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = k.confkey[1] \
         WHERE k.contype = 'f' AND ns.nspname = 'public'",
    )
    .fetch_all(&pool)
    .await
    .expect("foreign keys");
    for row in keys {
        let table: String = row.get("t");
        schema.entry(table).or_default().references.push((
            row.get("c"),
            row.get("rt"),
            row.get("rc"),
        ));
    }
    for table in schema.values_mut() {
        table.indexes.sort();
        table.references.sort();
    }
    pool.close().await;
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrate_to_the_same_schema() {
    let dir = temp_dir("schema-parity");
    let sqlite_url = format!("sqlite://{}", dir.join("lab.db").display());
    let pg = Postgres::start();
    let pg_url = pg.fresh_database("schema_parity").await;
    for url in [&sqlite_url, &pg_url] {
        Store::connect(url).await.expect("connect and migrate");
    }
    let (lite, post) = (
        sqlite_schema(&sqlite_url).await,
        postgres_schema(&pg_url).await,
    );
    // Not an empty comparison: the lab's tables are there.
    assert!(lite.len() >= 20 && lite.contains_key("samples"), "{lite:?}");
    assert!(
        lite["scenarios"]
            .references
            .contains(&("run_id".into(), "runs".into(), "id".into())),
        "{:?}",
        lite["scenarios"]
    );
    let names = |s: &Schema| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&lite), names(&post), "the same tables");
    let mut differences = Vec::new();
    for (name, table) in &lite {
        let other = &post[name];
        for (column, on_sqlite) in &table.columns {
            match other.columns.get(column) {
                None => differences.push(format!("{name}.{column}: not on PostgreSQL")),
                Some(on_pg) if on_pg != on_sqlite => differences.push(format!(
                    "{name}.{column}: SQLite {on_sqlite:?}, PostgreSQL {on_pg:?}"
                )),
                Some(_) => {}
            }
        }
        for column in other.columns.keys() {
            if !table.columns.contains_key(column) {
                differences.push(format!("{name}.{column}: not on SQLite"));
            }
        }
        if table.references != other.references {
            differences.push(format!(
                "{name} foreign keys: SQLite {:?}, PostgreSQL {:?}",
                table.references, other.references
            ));
        }
        if table.indexes != other.indexes {
            differences.push(format!(
                "{name} indexes: SQLite {:?}, PostgreSQL {:?}",
                table.indexes, other.indexes
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    let _ = std::fs::remove_dir_all(dir);
}

/// The comparison itself notices what it is for: a column's type family,
/// a nullability, a default or an index that differs.
#[test]
fn types_and_defaults_are_compared_by_meaning() {
    assert_eq!(family("INTEGER"), family("bigint"));
    assert_eq!(family("TEXT"), family("character varying"));
    assert_eq!(family("REAL"), family("double precision"));
    assert_ne!(family("INTEGER"), family("text"));
    assert_eq!(
        plain_default(Some("'queued'::text".into())),
        plain_default(Some("'queued'".into()))
    );
    assert_eq!(plain_default(Some("(0)".into())), Some("0".into()));
    assert_ne!(
        plain_default(Some("0".into())),
        plain_default(Some("1".into()))
    );
    let a = Index {
        columns: vec!["run_id".into()],
        unique: false,
    };
    let b = Index {
        unique: true,
        ..a.clone()
    };
    assert_ne!(a, b);
}
