//! Any text in any of the launch form's and the CLI's fields (what a
//! user, a script or a hostile page sends): each parser answers Ok or an
//! error that says why, never panics; the lists it accepts are not empty
//! and hold no zero.
#![no_main]

use domain::builds::MiteBuild;
use domain::dependencies::{parse_moment, parse_packages, DependencyChoice};
use domain::model::{parse_bus, parse_concurrencies, parse_duration, CollectorKeep};
use domain::profile::ProfileSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(why) = parse_duration(text) {
        assert!(why.contains('`'), "the error quotes what it read: {why}");
    }
    if let Ok(concurrencies) = parse_concurrencies(text) {
        assert!(!concurrencies.is_empty() && concurrencies.iter().all(|&c| c > 0));
    }
    let _ = parse_bus(text);
    let _ = CollectorKeep::parse(text);
    let _ = MiteBuild::parse_list(text);
    let _ = DependencyChoice::parse(text);
    let _ = parse_moment(text);
    let _ = parse_packages(text);
    let _ = ProfileSpec::parse_processes(text);
});
