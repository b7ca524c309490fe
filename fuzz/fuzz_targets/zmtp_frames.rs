//! Any bytes as mite's duplicator's stream to the lab (anyone on the
//! agent's host can push into it): the frame layer never panics, and a
//! stream read in two pieces (a read that stopped anywhere) hands over the
//! same frames, uses the same bytes and fails alike as read whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mite_bus::zmtp::frames;

fuzz_target!(|input: &[u8]| {
    let Some((cut, data)) = input.split_first_chunk::<2>() else {
        return;
    };
    let cut = usize::from(u16::from_le_bytes(*cut)) % (data.len() + 1);
    let (mut whole, mut pings) = (Vec::new(), 0usize);
    let all = frames(data, |f| whole.push(f.to_vec()), |p| {
        assert!(p.len() <= 16, "a PONG's context is cut to 16 bytes");
        pings += 1;
    });
    if let Ok(all) = &all {
        assert!(all.used <= data.len());
        assert!(all.used + all.need > data.len(), "whatever is left is short");
    }
    let mut pieces = Vec::new();
    match frames(&data[..cut], |f| pieces.push(f.to_vec()), |_| {}) {
        // Its frames are the whole's first: the whole fails on them too.
        Err(_) => assert!(all.is_err(), "the first piece failed, the whole did not"),
        Ok(first) => {
            let rest = frames(&data[first.used..], |f| pieces.push(f.to_vec()), |_| {});
            match (&all, rest) {
                (Ok(all), Ok(rest)) => {
                    assert_eq!(first.used + rest.used, all.used);
                    assert_eq!(pieces, whole);
                }
                (Err(_), Err(_)) => {}
                (all, rest) => panic!("whole: {all:?}; in two pieces: {rest:?}"),
            }
        }
    }
});
