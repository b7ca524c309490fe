//! Where mite spends its time: py-spy samples the stacks of mite's
//! processes during a scenario ([`capture`]), attached to them or starting
//! them ([`started`]); the folded stacks are kept in
//! the database and the scenario's folder ([`folded`]) and drawn as flame
//! graphs ([`render`]).

pub mod capture;
pub mod diff;
pub mod folded;
pub mod py_spy;
pub mod render;
pub mod started;
