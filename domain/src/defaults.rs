//! A run's defaults, each in one place. `RunParams::default()`, the launch
//! form, the CLI's flags (shown in `--help`) and the library's shape
//! preview read them; clap and the form take the `*_TEXT` spelling, which
//! the tests below pin to the value.

/// Concurrent journeys of each scenario, run one after another (the seed's
/// 1, 10, 100 and 1000).
pub const CONCURRENCIES: [u32; 4] = [1, 10, 100, 1000];
pub const CONCURRENCIES_TEXT: &str = "1,10,100,1000";

/// How long each scenario's volume model keeps its journeys running.
pub const DURATION_MS: u64 = 60_000;
pub const DURATION_TEXT: &str = "60s";

/// mite's `--spawn-rate`: high enough to leave mite unthrottled, as mite's
/// own perf script does (with mite's default, 1000, throughput stalls).
pub const SPAWN_RATE: u32 = 1_000_000;
pub const SPAWN_RATE_TEXT: &str = "1000000";

/// Time between samples.
pub const INTERVAL_MS: u64 = 1_000;
pub const INTERVAL_TEXT: &str = "1s";

/// MiB of mite's collector files kept per scenario (the newest).
pub const COLLECTOR_KEEP_MIB: u64 = 100;
pub const COLLECTOR_KEEP_TEXT: &str = "100";

/// How many times each scenario runs with each build.
pub const REPEATS: u32 = 1;
pub const REPEATS_TEXT: &str = "1";

/// mite runners started against the one controller.
pub const RUNNERS: u32 = 1;
pub const RUNNERS_TEXT: &str = "1";

/// The mite build measured: the pinned one (scripts/setup's venv).
pub const MITE_BUILD_TEXT: &str = "pinned";

/// The lab reads mite's message bus (mite's own view of each scenario);
/// `off` keeps the lab's footprint at the seed's measurement only.
pub const READ_BUS: bool = true;
pub const BUS_TEXT: &str = "on";

/// py-spy's samples a second: half its own default, where its cost on a
/// CPU-bound runner stays within the noise (BENCHMARKS.md).
pub const PROFILE_RATE: u32 = 50;
/// The processes profiled.
pub const PROFILE_PROCESSES_TEXT: &str = "runner";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builds::MiteBuild;
    use crate::model::{parse_concurrencies, parse_duration, CollectorKeep, RunParams};
    use crate::process::ProcessKind;
    use crate::profile::ProfileSpec;

    #[test]
    fn each_spelling_reads_as_its_value() {
        assert_eq!(
            parse_concurrencies(CONCURRENCIES_TEXT),
            Ok(CONCURRENCIES.to_vec())
        );
        assert_eq!(
            parse_duration(DURATION_TEXT).map(|d| d.as_millis() as u64),
            Ok(DURATION_MS)
        );
        assert_eq!(
            parse_duration(INTERVAL_TEXT).map(|d| d.as_millis() as u64),
            Ok(INTERVAL_MS)
        );
        assert_eq!(SPAWN_RATE_TEXT.parse(), Ok(SPAWN_RATE));
        assert_eq!(REPEATS_TEXT.parse(), Ok(REPEATS));
        assert_eq!(RUNNERS_TEXT.parse(), Ok(RUNNERS));
        assert_eq!(
            CollectorKeep::parse(COLLECTOR_KEEP_TEXT),
            Ok(CollectorKeep::LastMib(COLLECTOR_KEEP_MIB))
        );
        assert_eq!(MiteBuild::parse(MITE_BUILD_TEXT), Ok(MiteBuild::Pinned));
        assert_eq!(crate::model::parse_bus(BUS_TEXT), Ok(READ_BUS));
        assert_eq!(
            ProfileSpec::parse_processes(PROFILE_PROCESSES_TEXT),
            Ok(vec![ProcessKind::Runner])
        );
    }

    #[test]
    fn a_default_run_is_made_of_them() {
        let params = RunParams::default();
        assert_eq!(params.concurrencies, CONCURRENCIES);
        assert_eq!(params.duration_ms, DURATION_MS);
        assert_eq!(params.spawn_rate, SPAWN_RATE);
        assert_eq!(params.interval_ms, INTERVAL_MS);
        assert_eq!(params.collector, CollectorKeep::LastMib(COLLECTOR_KEEP_MIB));
        assert_eq!(params.repeats, REPEATS);
        assert_eq!(params.runners, RUNNERS);
        assert!(params.mite.is_empty(), "the pinned build");
        assert_eq!(ProfileSpec::runners().rate, PROFILE_RATE);
        assert!(params.validate().is_empty(), "the defaults are a valid run");
    }
}
