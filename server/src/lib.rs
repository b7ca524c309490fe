//! mite perf lab: runs mite's load-testing components against a target
//! server, samples their CPU and memory and the target's throughput, stores
//! every sample, and reports them as CSV and interactive charts.
//!
//! - [`run`] executes a run (scenario after scenario), using
//!   [`supervisor`] (process groups, two-stage stop), [`sampler`] (CPU and memory from `/proc`),
//!   [`target`] (the HTTP server under load), [`ports`] (who holds a port)
//!   and [`os_process`] (facts about processes);
//! - [`bus`] reads mite's own account (transactions, errors, latency,
//!   concurrency) from its message bus;
//! - [`store`] keeps runs and samples (SQLite or PostgreSQL);
//! - [`reports`] writes `samples.csv`, `transactions.csv` and `chart.html`;
//! - [`trend`] finds the steps in a figure's history and [`bisect`] the
//!   commit that made one;
//! - [`sandbox`] runs measured code (builds, scenarios, targets) where it
//!   cannot reach the lab;
//! - [`cleanup`] stops what a crashed lab left behind;
//! - [`lab`] queues runs for the browser and [`web`] serves it, to the
//!   callers [`access`] lets in; [`client`] asks a lab over HTTP, as
//!   `ci check` does.

// The pages' view types (Leptos keeps them whole in debug builds) are deep.
#![recursion_limit = "256"]

pub use domain::{figures, model};

pub mod access;
pub mod agent_identity;
pub mod bisect;
pub mod bus;
pub mod child_env;
pub mod children;
pub mod cleanup;
pub mod client;
pub mod clock;
pub mod compare;
pub mod counters;
pub mod http_client;
pub mod lab;
pub mod library;
pub mod metrics;
pub mod mite_env;
pub mod os_process;
pub mod paths;
pub mod ports;
pub mod profile;
pub mod reports;
pub mod run;
pub mod sampler;
pub mod sandbox;
pub mod store;
pub mod supervisor;
pub mod target;
pub mod trend;
pub mod web;
