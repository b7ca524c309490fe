fn main() {
    use mite_perf::bus::message::decode;
    use mite_perf::bus::tally::BusTally;
    let frame = std::fs::read(std::env::args().nth(1).expect("frame file")).expect("read");
    let n = 1_000_000;
    let start = std::time::Instant::now();
    let mut ok = 0;
    for _ in 0..n {
        if decode(&frame).is_ok() {
            ok += 1;
        }
    }
    let d = start.elapsed();
    let mut tally = BusTally::new(1_795_750_472_000);
    let start = std::time::Instant::now();
    for _ in 0..n {
        let m = decode(&frame).expect("decodes");
        tally.add(&m);
    }
    let t = start.elapsed();
    println!(
        "decode {:.3} µs, decode+tally {:.3} µs ({ok})",
        d.as_secs_f64() * 1e6 / n as f64,
        t.as_secs_f64() * 1e6 / n as f64
    );
}
