//! `samples.csv`: the original script's columns first
//! (`elapsed,process,cpu,mem,scenario,requests`), then the lab's own.
//! `processes.csv`: every process's threads, files, scheduling and IO.
//! One formatter each serves the run folder's file and the downloads.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::ReportError;
use crate::model::Sample;
use crate::store::{SampleRow, SampleSource, Store, StoreError};

/// A text cell of any CSV the lab writes: quoted when it holds a comma, a
/// quote or a line break, and made inert for spreadsheets when it starts
/// like a formula (`=`, `+`, `-`, `@`, a tab or a carriage return): such a
/// cell gets a leading `'`, as OWASP advises, so `=1+1` stays text.
/// Numbers are never written through this.
pub fn text_cell(text: &str) -> std::borrow::Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = text.contains([',', '"', '\n', '\r']);
    match (formula, quoted) {
        (false, false) => text.into(),
        (true, false) => format!("'{text}").into(),
        (formula, true) => format!(
            "\"{}{}\"",
            if formula { "'" } else { "" },
            text.replace('"', "\"\"")
        )
        .into(),
    }
}

/// The header line (with its newline).
pub const HEADER: &str =
    "elapsed,process,cpu,mem,scenario,requests,requests_in_interval,timestamp,pid,concurrency\n";

/// Milliseconds as seconds with three decimals (`2.500`), exactly.
fn push_millis(out: &mut Vec<u8>, ms: i64) {
    let mut digits = itoa::Buffer::new();
    if ms < 0 {
        out.push(b'-');
    }
    let ms = ms.unsigned_abs();
    out.extend_from_slice(digits.format(ms / 1000).as_bytes());
    let frac = ms % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// A number with two decimals, exactly as `format!("{:.2}")` writes it:
/// integer arithmetic where the rounding is plain, the formatter itself
/// where the value sits too near a half to tell.
fn push_hundredths(out: &mut Vec<u8>, x: f64) {
    let scaled = x * 100.0;
    let frac = scaled - scaled.floor();
    if !(x.is_finite() && x.abs() < 1e12) || (frac - 0.5).abs() < 1e-6 {
        let _ = write!(out, "{x:.2}");
        return;
    }
    let hundredths = scaled.round() as i64;
    // `-0.004` is written `-0.00`, as the formatter writes it.
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let n = hundredths.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(n / 100).as_bytes());
    let frac = n % 100;
    out.extend_from_slice(&[b'.', b'0' + (frac / 10) as u8, b'0' + (frac % 10) as u8]);
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends one CSV line (with its newline). `elapsed` is seconds since the
/// scenario's controller started; `cpu` is percent of one core; `mem` is
/// RSS in bytes; `requests` is the target's count since the scenario
/// started and `requests_in_interval` the requests served since the
/// previous sample, both on the `http` rows only; `timestamp` is unix seconds.
pub fn push_line(out: &mut Vec<u8>, scenario: &str, concurrency: i64, s: &Sample) {
    push_millis(out, s.elapsed_ms);
    out.push(b',');
    out.extend_from_slice(s.process.as_str().as_bytes());
    out.push(b',');
    push_hundredths(out, s.cpu);
    out.push(b',');
    push_int(out, s.mem);
    out.push(b',');
    out.extend_from_slice(text_cell(scenario).as_bytes());
    out.push(b',');
    if let Some(n) = s.requests {
        push_int(out, n);
    }
    out.push(b',');
    if let Some(n) = s.requests_in_interval {
        push_int(out, n);
    }
    out.push(b',');
    push_millis(out, s.at_ms);
    out.push(b',');
    push_int(out, s.pid);
    out.push(b',');
    push_int(out, concurrency);
    out.push(b'\n');
}

/// The header of `processes.csv` (with its newline).
pub const PROCESS_HEADER: &str = "scenario,concurrency,process,pid,elapsed,timestamp,cpu,\
cpu_wait,mem,threads,fds,voluntary_switches,involuntary_switches,read_bytes,written_bytes\n";

/// Appends one `processes.csv` line: `cpu_wait` is the percent of the
/// interval the process's main thread waited for a CPU; switches (of its
/// main thread) and bytes are counted since the previous sample. The
/// detail's fields are empty for samples taken without it.
pub fn push_process_line(out: &mut Vec<u8>, scenario: &str, concurrency: i64, s: &Sample) {
    out.extend_from_slice(text_cell(scenario).as_bytes());
    out.push(b',');
    push_int(out, concurrency);
    out.push(b',');
    out.extend_from_slice(s.process.as_str().as_bytes());
    out.push(b',');
    push_int(out, s.pid);
    out.push(b',');
    push_millis(out, s.elapsed_ms);
    out.push(b',');
    push_millis(out, s.at_ms);
    out.push(b',');
    push_hundredths(out, s.cpu);
    out.push(b',');
    if let Some(d) = &s.detail {
        push_hundredths(out, d.cpu_wait);
    }
    out.push(b',');
    push_int(out, s.mem);
    match &s.detail {
        Some(d) => {
            for n in [
                d.threads,
                d.fds,
                d.voluntary_switches,
                d.involuntary_switches,
                d.read_bytes,
                d.write_bytes,
            ] {
                out.push(b',');
                push_int(out, n);
            }
        }
        None => out.extend_from_slice(b",,,,,,"),
    }
    out.push(b'\n');
}

/// What a CSV holds: `samples.csv` or `processes.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Samples,
    Processes,
}

impl Layout {
    fn header(self) -> &'static str {
        match self {
            Layout::Samples => HEADER,
            Layout::Processes => PROCESS_HEADER,
        }
    }

    fn push(self, out: &mut Vec<u8>, scenario: &str, concurrency: i64, s: &Sample) {
        match self {
            Layout::Samples => push_line(out, scenario, concurrency, s),
            Layout::Processes => push_process_line(out, scenario, concurrency, s),
        }
    }
}

/// One CSV line (with its newline).
pub fn line(row: &SampleRow) -> String {
    let mut out = Vec::with_capacity(96);
    push_line(&mut out, &row.scenario, row.concurrency, &row.sample);
    String::from_utf8_lossy(&out).into_owned()
}

/// The CSV of `source` (header first) as chunks, one per batch the store
/// reads, streamed from the database: memory stays flat whatever the run's size.
pub fn chunks(
    store: &Store,
    source: SampleSource,
    layout: Layout,
) -> BoxStream<'static, Result<Vec<u8>, StoreError>> {
    let store = store.clone();
    futures_util::stream::once(async move {
        let names: HashMap<i64, (String, i64)> = store.scenario_names(source).await?;
        let header =
            futures_util::stream::once(async move { Ok(layout.header().as_bytes().to_vec()) });
        let lines = store.sample_batches(source).map(move |batch| {
            let batch = batch?;
            let mut chunk = Vec::with_capacity(batch.len() * 80);
            for (id, sample) in &batch {
                let (name, concurrency) = names
                    .get(id)
                    .map(|(n, c)| (n.as_str(), *c))
                    .unwrap_or(("?", 0));
                layout.push(&mut chunk, name, concurrency, sample);
            }
            Ok(chunk)
        });
        Ok::<_, StoreError>(header.chain(lines))
    })
    .flat_map(|made| match made {
        Ok(stream) => stream.boxed(),
        Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
    })
    .boxed()
}

/// Writes a run's samples into `path`: first under a temporary name, then
/// renamed, so a full disk or a crash never leaves a truncated `samples.csv`.
/// Returns the number of bytes written.
pub async fn write_file(store: &Store, run_id: i64, path: &Path) -> Result<u64, ReportError> {
    let partial = super::partial_path(path);
    let write_err = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    let result = async {
        let file = std::fs::File::create(&partial).map_err(write_err)?;
        let mut out = std::io::BufWriter::new(file);
        let mut written = 0u64;
        let mut stream = chunks(store, SampleSource::Run(run_id), Layout::Samples);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            out.write_all(&chunk).map_err(write_err)?;
            written += chunk.len() as u64;
        }
        out.into_inner()
            .map_err(|e| write_err(e.into_error()))?
            .sync_all()
            .map_err(write_err)?;
        std::fs::rename(&partial, path).map_err(write_err)?;
        Ok(written)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessKind;

    #[test]
    fn line_has_original_columns_first() {
        let row = SampleRow {
            scenario: "scenario10".into(),
            concurrency: 10,
            sample: Sample {
                process: ProcessKind::Target,
                pid: 7,
                at_ms: 1_700_000_000_250,
                elapsed_ms: 2500,
                cpu: 12.345,
                mem: 1048576,
                requests: Some(9000),
                requests_in_interval: Some(3000),
                detail: None,
            },
        };
        assert_eq!(
            line(&row),
            "2.500,target,12.35,1048576,scenario10,9000,3000,1700000000.250,7,10\n"
        );
        assert!(HEADER.starts_with("elapsed,process,cpu,mem,scenario,requests,"));
    }

    #[test]
    fn text_cells_are_quoted_and_never_formulas() {
        for (text, cell) in [
            ("scenario10", "scenario10"),
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("\r=1", "\"'\r=1\""),
            ("", ""),
        ] {
            assert_eq!(text_cell(text), cell, "{text:?}");
        }
        let mut out = Vec::new();
        let sample = Sample {
            process: crate::model::ProcessKind::Runner,
            pid: 1,
            at_ms: 0,
            elapsed_ms: 0,
            cpu: 0.0,
            mem: 0,
            requests: None,
            requests_in_interval: None,
            detail: None,
        };
        push_line(&mut out, "=1+1", 1, &sample);
        push_process_line(&mut out, "=1+1", 1, &sample);
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            !text.contains(",=1+1") && !text.starts_with("=1+1"),
            "{text}"
        );
        assert_eq!(text.matches("'=1+1").count(), 2, "{text}");
    }

    #[test]
    fn hundredths_are_written_as_the_formatter_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            0.005,
            0.015,
            0.125,
            0.375,
            1.005,
            12.345,
            99.995,
            100.0,
            -7.25349,
            104.04999999,
            1e12,
            1e-9,
            -0.004,
            f64::NAN,
            f64::INFINITY,
        ];
        // And a spread of ordinary CPU readings.
        let mut x = 0.0f64;
        while x < 400.0 {
            values.push(x);
            x += 0.0137;
        }
        for v in values {
            let mut out = Vec::new();
            push_hundredths(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), format!("{v:.2}"), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn hundredths_match_the_formatter_for_any_number(v in proptest::num::f64::ANY) {
            let mut out = Vec::new();
            push_hundredths(&mut out, v);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out), format!("{v:.2}"));
        }

        /// Any text, written as a cell between two others, reads back
        /// through a real CSV reader as itself (a formula-like one with the
        /// leading `'` that makes it inert), and the row keeps its cells.
        #[test]
        fn text_cells_read_back_through_a_csv_reader(
            text in proptest::prop_oneof![
                ".{0,40}",
                "[=+@,\"\r\n\t -]{0,12}",
            ],
        ) {
            let line = format!("before,{},after\n", text_cell(&text));
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let rows: Vec<::csv::StringRecord> = reader
                .records()
                .collect::<Result<_, _>>()
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}: {line:?}")))?;
            proptest::prop_assert_eq!(rows.len(), 1, "{:?}", line);
            let row = &rows[0];
            proptest::prop_assert_eq!(row.len(), 3, "{:?}", line);
            let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
            let expected = if formula { format!("'{text}") } else { text.clone() };
            proptest::prop_assert_eq!(&row[0], "before");
            proptest::prop_assert_eq!(&row[1], expected.as_str());
            proptest::prop_assert_eq!(&row[2], "after");
        }

        #[test]
        fn millis_match_the_formatter(ms in -1_000_000_000_000_000i64..1_000_000_000_000_000) {
            let mut out = Vec::new();
            push_millis(&mut out, ms);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out), format!("{:.3}", ms as f64 / 1000.0));
        }
    }

    #[test]
    fn times_are_exact_to_the_millisecond() {
        for ms in [0i64, 1, 999, 1000, 1001, 61_234, 1_795_518_671_727, -1500] {
            let mut out = Vec::new();
            push_millis(&mut out, ms);
            assert_eq!(
                String::from_utf8_lossy(&out),
                format!("{:.3}", ms as f64 / 1000.0)
            );
        }
    }
}
