//! Any frame as one of mite's messages (scenario code and anyone on the
//! agent's host can push one into mite's message port, and mite passes
//! it on to the lab): decoding never panics nor recurses past its depth
//! limit, and whatever decodes is counted by the tally without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mite_bus::message::decode;
use mite_bus::tally::BusTally;

const ORIGIN_MS: i64 = 1_700_000_000_000;

fuzz_target!(|frame: &[u8]| {
    let mut tally = BusTally::new(ORIGIN_MS);
    match decode(frame) {
        Ok(message) => tally.add(&message),
        Err(_) => tally.add_undecodable(),
    }
    tally.note_now(ORIGIN_MS + 60_000);
    let _ready = tally.take_ready(ORIGIN_MS + 60_000);
    let _rest = tally.take_all();
    let _ = (tally.totals(), tally.error_counts(), tally.counts());
});
