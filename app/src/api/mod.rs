//! The contract between the pages and the lab: the types they exchange and
//! the server functions. On the server (`ssr`), each function calls the
//! [`LabApi`] the server provides as context.

#[cfg(feature = "ssr")]
mod contract;
mod functions;
mod launch;
mod trends;
mod views;

pub use crate::error::LabError;
#[cfg(feature = "ssr")]
pub use contract::*;
pub use functions::*;
pub use launch::*;
pub use trends::*;
pub use views::*;
