//! mite perf lab's domain: the types and rules the pages, the server and the
//! CLI share, with no UI, web or database in them (no Leptos: checked by
//! scripts/check-layers).
//!
//! - [`defaults`]: a run's defaults, each in one place;
//! - [`model`]: what a run asks for and the states it goes through;
//! - [`process`]: the kinds of process a scenario starts;
//! - [`builds`]: which mite builds a run measures, in which order;
//! - [`dependencies`]: the packages a build runs with, how they were
//!   resolved, and what differs between two builds';
//! - [`profile`]: what py-spy profiles, and a profile's frames;
//! - [`figures`]: per-scenario summaries computed from samples;
//! - [`provenance`]: what a run measured (builds, machine, target, scenario);
//! - [`compare`]: figures over repeats and their verdicts;
//! - [`validity`]: whether a scenario measured what it seems to;
//! - [`matrix`]: a run's figures per build and concurrency (the version matrix);
//! - [`series`]: a figure of a scenario on a machine class across mite
//!   builds (the trends), and the order of its points;
//! - [`chart_spec`]: which charts a scenario has, as data;
//! - [`library`]: scenarios from a library folder, and their shapes;
//! - [`access`]: roles, and what each may do;
//! - [`format`]: figures as people read them.

pub mod access;
pub mod builds;
pub mod chart_spec;
pub mod compare;
pub mod defaults;
pub mod dependencies;
pub mod figures;
pub mod format;
pub mod instrument;
pub mod library;
pub mod matrix;
pub mod model;
pub mod process;
pub mod profile;
pub mod provenance;
pub mod series;
mod text_enum;
pub mod validity;
