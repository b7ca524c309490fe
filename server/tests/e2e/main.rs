//! END-TO-END (several minutes): real mite (the venv scripts/setup
//! creates), real SQLite files, a PostgreSQL cluster of the test's own and
//! headless Chromium; mite builds made with the real uv; the fault suite.
//! One binary, so the server stack is linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod alike;
mod bisect;
mod builds;
mod bus;
mod ci;
mod compare;
mod faults;
mod instructions;
mod lab;
mod library;
mod library_in_browser;
mod postgres;
mod profile;
mod proxy;
mod run;
mod sandbox;
mod trends;
