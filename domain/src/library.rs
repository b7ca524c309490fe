//! Scenarios from a library: the mite scenarios an agent found in the
//! folders it was started with (`--scenario-dir`), as the launch form lists
//! them. The browser names one by `module:function`; the agent finds it in
//! its own folders again before it runs it.

use serde::{Deserialize, Serialize};

/// One scenario an agent lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryScenario {
    /// The agent whose folders hold it.
    pub agent: String,
    /// `module:function`, as mite's controller imports it.
    pub spec: String,
    /// The module's docstring.
    pub doc: String,
    /// The function's own docstring.
    pub function_doc: String,
    /// The required journeys over time, for the concurrencies the agent
    /// asked about; none when they could not be computed.
    pub shapes: Vec<VolumeShape>,
    /// Why it cannot be imported or its volume model not computed.
    pub problem: Option<String>,
}

/// The required journeys of a scenario's volume models (summed) in each
/// second from its start, as mite's controller asks its runners for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeShape {
    /// The lab's `mite_perf_concurrency` it was computed with.
    pub concurrency: u32,
    pub required: Vec<u32>,
    /// Every volume model stopped by the end of `required`; otherwise it
    /// goes on past what was computed.
    pub stops: bool,
}

/// The lab's duration the shapes are computed with, in seconds (a run's
/// default).
pub const SHAPE_DURATION_S: u32 = (crate::defaults::DURATION_MS / 1000) as u32;
/// The concurrencies the shapes are computed for (a run's defaults).
pub const SHAPE_CONCURRENCIES: [u32; 4] = crate::defaults::CONCURRENCIES;

impl LibraryScenario {
    /// Whether the scenario's volume follows the concurrency the lab asks
    /// for; `None` when it could not be computed.
    pub fn follows_concurrency(&self) -> Option<bool> {
        let first = self.shapes.first()?;
        Some(self.shapes.iter().any(|s| s.required != first.required))
    }
}

/// Whether `spec` is `module:function` with a dotted module of Python
/// identifiers: nothing that could name a path.
pub fn is_scenario_spec(spec: &str) -> bool {
    let identifier = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    spec.len() <= 200
        && spec.split_once(':').is_some_and(|(module, function)| {
            module.split('.').all(identifier) && identifier(function)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_identifiers_only() {
        for good in ["checkout:scenario", "shop.browse:scenario", "_a.b_2:f"] {
            assert!(is_scenario_spec(good), "{good}");
        }
        for bad in [
            "",
            "checkout",
            ":scenario",
            "checkout:",
            "../etc:x",
            "a/b:c",
            "a..b:c",
            "shop.:f",
            "2shop:f",
            "a:b:c",
            "a b:c",
        ] {
            assert!(!is_scenario_spec(bad), "{bad}");
        }
    }

    #[test]
    fn following_the_concurrency_is_read_from_the_shapes() {
        let shape = |concurrency, required: &[u32]| VolumeShape {
            concurrency,
            required: required.to_vec(),
            stops: true,
        };
        let mut s = LibraryScenario {
            agent: "a".into(),
            spec: "m:f".into(),
            doc: String::new(),
            function_doc: String::new(),
            shapes: vec![shape(1, &[1, 1]), shape(10, &[1, 2])],
            problem: None,
        };
        assert_eq!(s.follows_concurrency(), Some(true));
        s.shapes = vec![shape(1, &[3, 3]), shape(10, &[3, 3])];
        assert_eq!(s.follows_concurrency(), Some(false));
        s.shapes.clear();
        assert_eq!(s.follows_concurrency(), None);
    }
}
