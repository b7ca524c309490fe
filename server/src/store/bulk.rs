//! Reading whole runs fast, for CSV downloads and `samples.csv`: SQLite
//! through a read-only connection of its own (`rusqlite`, on a blocking
//! thread), PostgreSQL through `COPY … TO STDOUT`. Samples come in batches,
//! in the order of [`source_query`].

/// The value of an `Option` expression, or `Ok(None)` from the enclosing
/// closure: a sample's detail is whole or absent.
macro_rules! some {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

use std::path::PathBuf;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use sqlx::postgres::{PgPool, PgPoolCopyExt};

use super::samples::{source_query, SampleSource};
use super::{Pool, Result, Store, StoreError, Target};
use crate::model::{ProcessDetail, ProcessKind, Sample};

/// Samples (with their scenario's id) travel in batches of this many.
const BATCH: usize = 4096;

/// A batch of samples with their scenario's id.
pub type SampleRows = Vec<(i64, Sample)>;

fn process_kind(text: &str) -> Result<ProcessKind> {
    text.parse().map_err(StoreError::Invalid)
}

impl Store {
    /// Every sample of `source` in order, in batches, read the fastest way
    /// the backend offers. The stream owns what it reads with, so it can
    /// outlive the borrow of the store (a download streams on).
    pub fn sample_batches(&self, source: SampleSource) -> BoxStream<'static, Result<SampleRows>> {
        match (&self.target, &self.pool) {
            (Target::Sqlite(options), _) => {
                sqlite_batches(options.get_filename().to_path_buf(), source)
            }
            (_, Pool::Postgres(pool)) => postgres_batches(pool.clone(), source),
            (Target::Postgres(_), Pool::Sqlite(_)) => futures_util::stream::once(async {
                Err(StoreError::Invalid(
                    "a PostgreSQL store with an SQLite pool".into(),
                ))
            })
            .boxed(),
        }
    }
}

fn receiver_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<SampleRows>>,
) -> BoxStream<'static, Result<SampleRows>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

fn sqlite_batches(path: PathBuf, source: SampleSource) -> BoxStream<'static, Result<SampleRows>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SampleRows>>(4);
    tokio::task::spawn_blocking(move || {
        let read = || -> Result<(), rusqlite::Error> {
            use rusqlite::OpenFlags;
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(5))?;
            // One scenario at a time, each read in the order of the
            // table's key: no sorting.
            let scenarios: Vec<i64> = match source {
                SampleSource::Scenario(id) => vec![id],
                SampleSource::Run(id) => {
                    let mut statement = conn
                        .prepare("SELECT id FROM scenarios WHERE run_id = ?1 ORDER BY position")?;
                    let ids = statement
                        .query_map([id], |row| row.get(0))?
                        .collect::<Result<Vec<i64>, _>>()?;
                    ids
                }
            };
            let (sql, _) = source_query(SampleSource::Scenario(0));
            let mut statement = conn.prepare(&sql)?;
            let mut batch = Vec::with_capacity(BATCH);
            for scenario in scenarios {
                let mut rows = statement.query([scenario])?;
                while let Some(row) = rows.next()? {
                    let process = match process_kind(row.get_ref(1)?.as_str()?) {
                        Ok(kind) => kind,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return Ok(());
                        }
                    };
                    batch.push((
                        row.get(0)?,
                        Sample {
                            process,
                            pid: row.get(2)?,
                            at_ms: row.get(3)?,
                            elapsed_ms: row.get(4)?,
                            cpu: row.get(5)?,
                            mem: row.get(6)?,
                            requests: row.get(7)?,
                            requests_in_interval: row.get(8)?,
                            detail: (|| -> rusqlite::Result<Option<ProcessDetail>> {
                                Ok(Some(ProcessDetail {
                                    threads: some!(row.get(9)?),
                                    fds: some!(row.get(10)?),
                                    cpu_wait: some!(row.get(11)?),
                                    voluntary_switches: some!(row.get(12)?),
                                    involuntary_switches: some!(row.get(13)?),
                                    read_bytes: some!(row.get(14)?),
                                    write_bytes: some!(row.get(15)?),
                                }))
                            })()?,
                        },
                    ));
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.blocking_send(Ok(full)).is_err() {
                            // Nobody reads any more (a download was ended).
                            return Ok(());
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(Ok(batch));
            }
            Ok(())
        };
        if let Err(e) = read() {
            let _ = tx.blocking_send(Err(StoreError::Read(e)));
        }
    });
    receiver_stream(rx)
}

/// One line of `COPY … TO STDOUT` (text format: tabs between fields, `\N`
/// for NULL) as a sample.
fn copy_line(line: &[u8]) -> Result<(i64, Sample)> {
    let bad = || {
        StoreError::Invalid(format!(
            "unreadable COPY line: {}",
            String::from_utf8_lossy(line)
        ))
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut fields = text.split('\t');
    let mut next = || fields.next().ok_or_else(bad);
    let int = |f: &str| f.parse::<i64>().map_err(|_| bad());
    let opt = |f: &str| {
        if f == "\\N" {
            Ok(None)
        } else {
            int(f).map(Some)
        }
    };
    let scenario_id = int(next()?)?;
    let process = process_kind(next()?)?;
    let pid = int(next()?)?;
    let at_ms = int(next()?)?;
    let elapsed_ms = int(next()?)?;
    let cpu = next()?.parse::<f64>().map_err(|_| bad())?;
    let mem = int(next()?)?;
    let requests = opt(next()?)?;
    let requests_in_interval = opt(next()?)?;
    let detail = (|| -> Result<Option<ProcessDetail>> {
        let real = |f: &str| -> Result<Option<f64>> {
            if f == "\\N" {
                Ok(None)
            } else {
                f.parse::<f64>().map(Some).map_err(|_| bad())
            }
        };
        Ok(Some(ProcessDetail {
            threads: some!(opt(next()?)?),
            fds: some!(opt(next()?)?),
            cpu_wait: some!(real(next()?)?),
            voluntary_switches: some!(opt(next()?)?),
            involuntary_switches: some!(opt(next()?)?),
            read_bytes: some!(opt(next()?)?),
            write_bytes: some!(opt(next()?)?),
        }))
    })()?;
    Ok((
        scenario_id,
        Sample {
            process,
            pid,
            at_ms,
            elapsed_ms,
            cpu,
            mem,
            requests,
            requests_in_interval,
            detail,
        },
    ))
}

fn postgres_batches(pool: PgPool, source: SampleSource) -> BoxStream<'static, Result<SampleRows>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SampleRows>>(4);
    tokio::spawn(async move {
        let (sql, id) = source_query(source);
        // COPY takes no parameters: the id is a number, written in.
        let statement = format!("COPY ({}) TO STDOUT", sql.replace("$1", &id.to_string()));
        let mut chunks = match pool.copy_out_raw(&statement).await {
            Ok(chunks) => chunks,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let mut carry: Vec<u8> = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            carry.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(end) = carry[start..].iter().position(|b| *b == b'\n') {
                match copy_line(&carry[start..start + end]) {
                    Ok(row) => batch.push(row),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                start += end + 1;
            }
            carry.drain(..start);
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(Ok(full)).await.is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch)).await;
        }
    });
    receiver_stream(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_read_as_samples() {
        // The nine columns of samples.csv, then the seven of the detail.
        let (id, s) = copy_line(
            b"7\thttp\t42\t1700000001000\t1000\t12.345\t1048576\t900\t\\N\
              \t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N",
        )
        .expect("a sample");
        assert_eq!(s.detail, None);
        assert_eq!(id, 7);
        assert_eq!(s.process, ProcessKind::Target);
        assert_eq!(
            (s.pid, s.at_ms, s.elapsed_ms, s.mem),
            (42, 1_700_000_001_000, 1000, 1 << 20)
        );
        assert_eq!(s.cpu, 12.345);
        assert_eq!((s.requests, s.requests_in_interval), (Some(900), None));
        let (_, runner) = copy_line(
            b"7\trunner\t43\t1700000001000\t1000\t99.5\t1048576\t\\N\t\\N\
              \t4\t30\t2.5\t10\t300\t0\t4096",
        )
        .expect("a sample with its detail");
        assert_eq!(
            runner.detail,
            Some(ProcessDetail {
                threads: 4,
                fds: 30,
                cpu_wait: 2.5,
                voluntary_switches: 10,
                involuntary_switches: 300,
                read_bytes: 0,
                write_bytes: 4096,
            })
        );
        assert!(copy_line(b"7\thttp\t42").is_err());
        assert!(copy_line(b"7\tteapot\t42\t1\t1\t1\t1\t\\N\t\\N").is_err());
    }
}
