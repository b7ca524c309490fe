//! Messages mite's duplicator could not pass on: it logs one line per
//! message it drops because an output's buffer is full (mite/zmq.py:
//! `Duplicator message buffer full for address tcp://…`).

use std::io::{BufRead, BufReader};
use std::path::Path;

/// Counts the drops the duplicator's log reports for `endpoint`
/// (`tcp://127.0.0.1:14304`). An unreadable log counts none.
pub fn dropped_for(log: &Path, endpoint: &str) -> u64 {
    let Ok(file) = std::fs::File::open(log) else {
        return 0;
    };
    count_drops(BufReader::new(file), endpoint)
}

/// Counts the drop lines for `endpoint` in a log.
pub fn count_drops(log: impl BufRead, endpoint: &str) -> u64 {
    let needle = format!("message buffer full for address {endpoint};");
    log.split(b'\n')
        .map_while(Result::ok)
        .filter(|line| String::from_utf8_lossy(line).contains(&needle))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_outputs_drops_count() {
        let log = "\
[ERROR] Duplicator message buffer full for address tcp://127.0.0.1:14303; error is 11: Resource temporarily unavailable
[ERROR] Duplicator message buffer full for address tcp://127.0.0.1:14304; error is 11: Resource temporarily unavailable
[ERROR] Duplicator message buffer full for address tcp://127.0.0.1:14304; error is 11: Resource temporarily unavailable
[INFO] something else about tcp://127.0.0.1:14304
[ERROR] Duplicator message buffer full for address tcp://127.0.0.1:143040; error is 11
";
        assert_eq!(count_drops(log.as_bytes(), "tcp://127.0.0.1:14304"), 2);
        assert_eq!(count_drops(log.as_bytes(), "tcp://127.0.0.1:14303"), 1);
        assert_eq!(
            dropped_for(Path::new("/nonexistent/duplicator.log"), "x"),
            0
        );
    }
}
