//! Flame graphs drawn by inferno: an SVG with its own search, zoom (click
//! a frame) and hover (samples and share), for a page or a file.

use super::folded::{self, Stacks};
use super::ProfileError;

/// A flame graph of `stacks`, titled; `None` without a sample.
pub fn flamegraph_svg(title: &str, stacks: &Stacks) -> Result<Option<Vec<u8>>, ProfileError> {
    if folded::total(stacks) == 0 {
        return Ok(None);
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "samples".to_string();
    // The same function gets the same colour in every graph.
    options.hash = true;
    let text = folded::to_text(stacks);
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, text.lines(), &mut svg)
        .map_err(ProfileError::Draw)?;
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flame_graph_names_its_frames() {
        let stacks = folded::parse("main;work (mite/runner.py) 9\nmain;idle 1\n").expect("folded");
        let svg = flamegraph_svg("runner", &stacks)
            .expect("drawn")
            .expect("svg");
        let svg = String::from_utf8(svg).expect("utf-8");
        assert!(svg.starts_with("<?xml"), "{}", &svg[..80]);
        assert!(
            svg.contains("work (mite/runner.py) (9 samples, 90.00%)"),
            "frame title"
        );
        assert!(svg.contains("Search"), "inferno's search");
        assert!(matches!(flamegraph_svg("empty", &Stacks::new()), Ok(None)));
    }
}
