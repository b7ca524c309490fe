//! The in-process tests: the HTTP router and the permission matrix
//! (`tower::ServiceExt::oneshot` against a temporary SQLite store), the
//! store suite (SQLite, and PostgreSQL started by the test), and the
//! `user`/`token` commands through the binary. No mite runs, no browser.
//! One binary, so the server stack is linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod faults_doc;
mod router;
mod schema;
mod store;
mod trend;
mod uploads;
