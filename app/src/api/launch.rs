//! The launch form as typed, checked into a run's parameters.

use serde::{Deserialize, Serialize};

use domain::builds::MiteBuild;
use domain::defaults;
use domain::model::{CollectorKeep, FieldError, RunParams, ScenarioSpec, StopRule};
use domain::profile::ProfileSpec;

/// What a launch asks for, as typed in the form. Missing fields take the
/// form's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaunchForm {
    /// Concurrencies, comma separated (the page sends the checked defaults
    /// and the custom ones here). Forms of old pages call it `scenarios`.
    #[serde(alias = "scenarios")]
    pub concurrencies: String,
    /// Checked concurrencies, as a form posted without JavaScript sends its
    /// checkboxes (`form[chosen][0]=1`, …); added to `scenarios`.
    pub chosen: Vec<String>,
    pub duration: String,
    pub spawn_rate: String,
    pub interval: String,
    pub label: String,
    /// mite builds, comma separated: `pinned`, versions (`2.10.0`).
    pub mite: String,
    /// Times each scenario runs with each build.
    pub repeat: String,
    /// The agent that must execute it; empty: any.
    pub agent: String,
    /// mite runners per scenario; empty: one.
    pub runners: String,
    /// The collector's files kept per scenario: `last` (`collector_mib`
    /// of them), `all` or `none`.
    pub collector: String,
    /// MiB kept when `collector` is `last`.
    pub collector_mib: String,
    /// A scenario of the agents' library (`module:function`); empty: the
    /// built-in one.
    pub scenario: String,
    /// Profile mite's runners (`on`, as a checkbox posts it); empty: not.
    pub profile: String,
    /// Profile its controller, duplicator and collector too (`on`).
    pub profile_all: String,
    /// Leave mite's message bus unread (`on`, as a checkbox posts it): the
    /// seed's measurement only; empty: the lab reads it.
    pub bus_off: String,
    /// Fixed work: requests per scenario (empty: the duration's worth).
    pub requests: String,
    /// Count instructions per request under Valgrind (`on`): fixed work
    /// only, each scenario run with N and 2N requests.
    pub valgrind: String,
    /// Stop adding repeats once every figure is decided (`repeat` is then
    /// the most): `on` judges as compare does, `gate` as `ci check` does;
    /// empty: every repeat runs. It compares the run's two builds.
    pub until_decided: String,
    /// With `until_decided`: the smallest change that counts (`5%`,
    /// `0.05`); empty: compare's default.
    pub threshold: String,
    /// With `until_decided`: the level (`0.01`); empty: compare's.
    pub alpha: String,
}

/// `5%` or `0.05` as a share; the range is [`RunParams::validate`]'s.
fn parse_share(text: &str) -> Result<f64, String> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a share (5% or 0.05)"))
}

impl Default for LaunchForm {
    fn default() -> Self {
        LaunchForm {
            concurrencies: defaults::CONCURRENCIES_TEXT.into(),
            chosen: vec![],
            duration: defaults::DURATION_TEXT.into(),
            spawn_rate: defaults::SPAWN_RATE_TEXT.into(),
            interval: defaults::INTERVAL_TEXT.into(),
            label: String::new(),
            mite: defaults::MITE_BUILD_TEXT.into(),
            repeat: defaults::REPEATS_TEXT.into(),
            agent: String::new(),
            runners: defaults::RUNNERS_TEXT.into(),
            collector: "last".into(),
            collector_mib: defaults::COLLECTOR_KEEP_TEXT.into(),
            scenario: String::new(),
            profile: String::new(),
            profile_all: String::new(),
            bus_off: String::new(),
            requests: String::new(),
            valgrind: String::new(),
            until_decided: String::new(),
            threshold: String::new(),
            alpha: String::new(),
        }
    }
}

impl LaunchForm {
    /// The run these fields describe, or what cannot be read in each field.
    /// It only reads them: whether the run may go (ranges, limits) is
    /// [`RunParams::validate`]'s to say, once, where the run is launched.
    pub fn to_params(&self) -> Result<RunParams, Vec<FieldError>> {
        use domain::model::{parse_concurrencies, parse_duration};
        let mut errors = Vec::new();
        let mut field = |name: &str, message: String| {
            errors.push(FieldError {
                field: name.into(),
                message,
            })
        };
        let listed: Vec<&str> = self
            .chosen
            .iter()
            .map(String::as_str)
            .chain(self.concurrencies.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let concurrencies = if listed.is_empty() {
            field("concurrencies", "choose at least one concurrency".into());
            vec![]
        } else {
            parse_concurrencies(&listed.join(",")).unwrap_or_else(|e| {
                field("concurrencies", e);
                vec![]
            })
        };
        let duration = parse_duration(&self.duration).unwrap_or_else(|e| {
            field("duration", e);
            std::time::Duration::ZERO
        });
        let interval = parse_duration(&self.interval).unwrap_or_else(|e| {
            field("interval", e);
            std::time::Duration::ZERO
        });
        let spawn_rate = self.spawn_rate.trim().parse::<u32>().unwrap_or_else(|_| {
            field(
                "spawn_rate",
                format!("`{}` is not a whole number", self.spawn_rate.trim()),
            );
            0
        });
        let mite = MiteBuild::parse_list(&self.mite).unwrap_or_else(|e| {
            field("mite", e);
            vec![]
        });
        let runners = match self.runners.trim() {
            "" => 1,
            text => text.parse::<u32>().unwrap_or_else(|_| {
                field("runners", format!("`{text}` is not a whole number"));
                0
            }),
        };
        let collector = match self.collector.trim() {
            "" | "last" => CollectorKeep::parse(&self.collector_mib),
            "all" => Ok(CollectorKeep::All),
            "none" => Ok(CollectorKeep::Nothing),
            other => Err(format!("`{other}` is not `last`, `all` or `none`")),
        }
        .unwrap_or_else(|e| {
            field("collector", e);
            CollectorKeep::default()
        });
        let repeats = self.repeat.trim().parse::<u32>().unwrap_or_else(|_| {
            field(
                "repeat",
                format!("`{}` is not a whole number", self.repeat.trim()),
            );
            0
        });
        let scenario = match self.scenario.trim() {
            "" | "builtin" => ScenarioSpec::Builtin,
            spec => ScenarioSpec::Library { spec: spec.into() },
        };
        if let ScenarioSpec::Library { spec } = &scenario {
            if !domain::library::is_scenario_spec(spec) {
                field(
                    "scenario",
                    format!("`{spec}` is not a module:function of the scenario library"),
                );
            }
        }
        let requests = match self.requests.trim() {
            "" => None,
            text => match text.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    field("requests", format!("`{text}` is not a whole number"));
                    None
                }
            },
        };
        let stop = match self.until_decided.trim() {
            "" | "off" | "false" => None,
            mode @ ("on" | "true" | "gate") => {
                let threshold = match self.threshold.trim() {
                    "" => domain::compare::DEFAULT_THRESHOLD,
                    text => parse_share(text).unwrap_or_else(|e| {
                        field("threshold", e);
                        0.0
                    }),
                };
                let alpha = match self.alpha.trim() {
                    "" => domain::compare::ALPHA,
                    text => text.parse::<f64>().unwrap_or_else(|_| {
                        field("alpha", format!("`{text}` is not a level such as 0.01"));
                        0.0
                    }),
                };
                Some(StopRule {
                    threshold,
                    alpha,
                    gate: mode == "gate",
                    against: None,
                })
            }
            other => {
                field(
                    "until_decided",
                    format!("`{other}` is not `on`, `gate` or empty"),
                );
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let params = RunParams {
            requests,
            valgrind: matches!(self.valgrind.trim(), "on" | "true"),
            stop,
            mite: if mite == [MiteBuild::Pinned] {
                vec![]
            } else {
                mite
            },
            repeats,
            runners,
            collector,
            scenario,
            profile: match (self.profile.trim(), self.profile_all.trim()) {
                ("" | "off" | "false", _) => None,
                (_, "on" | "true") => Some(ProfileSpec {
                    rate: ProfileSpec::DEFAULT_RATE,
                    processes: ProfileSpec::PROFILABLE.to_vec(),
                }),
                _ => Some(ProfileSpec::runners()),
            },
            read_bus: match self.bus_off.trim() {
                "" | "off" | "false" => defaults::READ_BUS,
                _ => false,
            },
            agent: Some(self.agent.trim().to_string()).filter(|a| !a.is_empty()),
            label: self.label.trim().to_string(),
            concurrencies,
            duration_ms: duration.as_millis() as u64,
            spawn_rate,
            interval_ms: interval.as_millis() as u64,
            ..RunParams::default()
        };
        Ok(params)
    }
}

/// The answer to a launch: the run's id, or field errors to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LaunchOutcome {
    Queued { run_id: i64, position: usize },
    Invalid(Vec<FieldError>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_errors_name_their_fields() {
        let form = LaunchForm {
            concurrencies: "1,x".into(),
            chosen: vec![],
            duration: "soon".into(),
            spawn_rate: "fast".into(),
            interval: "1s".into(),
            label: String::new(),
            mite: "2.10.0,latest".into(),
            repeat: "three".into(),
            agent: String::new(),
            runners: "two".into(),
            collector: "last".into(),
            collector_mib: "lots".into(),
            scenario: "../x.py:f".into(),
            profile: "on".into(),
            profile_all: String::new(),
            bus_off: String::new(),
            requests: "many".into(),
            valgrind: String::new(),
            until_decided: "maybe".into(),
            threshold: String::new(),
            alpha: String::new(),
        };
        let errors = form.to_params().expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "concurrencies",
                "duration",
                "spawn_rate",
                "mite",
                "runners",
                "collector",
                "repeat",
                "scenario",
                "requests",
                "until_decided"
            ]
        );
        let kept = |collector: &str, mib: &str| {
            LaunchForm {
                collector: collector.into(),
                collector_mib: mib.into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.collector)
        };
        assert_eq!(kept("all", "ignored"), Ok(CollectorKeep::All));
        assert_eq!(kept("none", ""), Ok(CollectorKeep::Nothing));
        assert_eq!(kept("last", "20"), Ok(CollectorKeep::LastMib(20)));
        let profiled = |profile: &str, all: &str| {
            LaunchForm {
                profile: profile.into(),
                profile_all: all.into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.profile.map(|s| s.processes.len()))
        };
        assert_eq!(profiled("", "on"), Ok(None));
        assert_eq!(profiled("on", ""), Ok(Some(1)));
        assert_eq!(profiled("on", "on"), Ok(Some(4)));
        let reads_bus = |bus_off: &str| {
            LaunchForm {
                bus_off: bus_off.into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.read_bus)
        };
        assert_eq!(reads_bus(""), Ok(true));
        assert_eq!(reads_bus("on"), Ok(false));
        let fixed = LaunchForm {
            requests: " 3000 ".into(),
            valgrind: "on".into(),
            ..LaunchForm::default()
        }
        .to_params()
        .expect("valid");
        assert_eq!((fixed.requests, fixed.valgrind), (Some(3000), true));
        let timed = LaunchForm::default().to_params().expect("valid");
        assert_eq!((timed.requests, timed.valgrind), (None, false));
        let stops = |mode: &str, threshold: &str| {
            LaunchForm {
                mite: "pinned,2.10.0".into(),
                until_decided: mode.into(),
                threshold: threshold.into(),
                alpha: "0.02".into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.stop)
        };
        assert_eq!(stops("", "3%"), Ok(None));
        assert_eq!(
            stops("gate", "3%"),
            Ok(Some(StopRule {
                threshold: 0.03,
                alpha: 0.02,
                gate: true,
                against: None
            }))
        );
        assert_eq!(
            stops("on", "0.1").map(|s| s.map(|s| (s.threshold, s.gate))),
            Ok(Some((0.1, false)))
        );
        assert_eq!(
            stops("on", "lots").expect_err("no share")[0].field,
            "threshold"
        );
        // One build, nothing to compare it with as it goes: refused.
        let alone = LaunchForm {
            until_decided: "on".into(),
            ..LaunchForm::default()
        };
        let errors = alone.to_params().expect("read").validate();
        assert_eq!(errors[0].field, "until_decided");
        assert!(
            errors[0].message.contains("compares two builds"),
            "{errors:?}"
        );
        let empty = kept("last", " ").expect_err("no size");
        assert_eq!(empty[0].field, "collector");
        assert!(empty[0].message.contains("how many MiB"), "{empty:?}");
        let too_many = LaunchForm {
            runners: "33".into(),
            ..LaunchForm::default()
        };
        let errors = too_many.to_params().expect("read").validate();
        assert_eq!(errors[0].field, "runners");
        assert!(errors[0].message.contains("use 1 to 32"), "{errors:?}");
        let two = LaunchForm {
            runners: " 2 ".into(),
            ..LaunchForm::default()
        };
        assert_eq!(two.to_params().map(|p| p.runners), Ok(2));
        let builds = LaunchForm {
            mite: "pinned, 2.10.0".into(),
            repeat: "3".into(),
            ..LaunchForm::default()
        }
        .to_params()
        .expect("valid");
        assert_eq!(builds.builds().len(), 2);
        assert_eq!(builds.repeats, 3);
        assert_eq!(
            LaunchForm::default().to_params().map(|p| p.mite),
            Ok(vec![])
        );
        let form = LaunchForm {
            interval: "10ms".into(),
            ..LaunchForm::default()
        };
        let errors = form.to_params().expect("read").validate();
        assert_eq!(errors[0].field, "interval");
        // The form starts from the run's defaults (domain::defaults).
        assert_eq!(LaunchForm::default().to_params(), Ok(RunParams::default()));
        // Checkboxes (a form posted without JavaScript) and custom values add up.
        let form = LaunchForm {
            chosen: vec!["1".into(), "100".into()],
            concurrencies: " 50 ".into(),
            ..LaunchForm::default()
        };
        assert_eq!(
            form.to_params().map(|p| p.concurrencies),
            Ok(vec![1, 100, 50])
        );
        let none = LaunchForm {
            concurrencies: String::new(),
            ..LaunchForm::default()
        };
        assert_eq!(
            none.to_params().expect_err("nothing chosen")[0].field,
            "concurrencies"
        );
    }
}
