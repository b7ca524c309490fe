//! The one error type of the app/server contract. Its kind survives the trip
//! from the lab to the page: a page can tell "no such run" (404) from "the
//! database is down" (503), and the HTTP status of a server function's answer
//! says the same (see [`LabError::status`]).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LabError {
    /// What was asked for does not exist (a run, a scenario, a log).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be done as asked: which field, and why.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The lab cannot answer now (its database is down, the queue is full):
    /// trying again later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The caller is not known: sign in (or send a token) first.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too much at once (a full queue, too many downloads): try again later.
    #[error("{0}")]
    Busy(String),
    /// A fault in the lab itself.
    #[error("{0}")]
    Internal(String),
    /// The call did not get through (network, encoding): said by the
    /// server-function machinery rather than the lab.
    #[error("{0}")]
    Call(String),
}

impl LabError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        LabError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            LabError::NotFound(_) => 404,
            LabError::Invalid { .. } => 400,
            LabError::Unavailable(_) => 503,
            LabError::Unauthenticated(_) => 401,
            LabError::Forbidden(_) => 403,
            LabError::Busy(_) => 429,
            LabError::Internal(_) => 500,
            LabError::Call(_) => 502,
        }
    }
}

impl From<domain::access::Denied> for LabError {
    fn from(denied: domain::access::Denied) -> Self {
        LabError::Forbidden(denied.0)
    }
}

impl FromServerFnError for LabError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments the server could not read are the caller's mistake.
            ServerFnErrorErr::Args(message) => LabError::invalid("arguments", message),
            ServerFnErrorErr::MissingArg(name) => LabError::invalid(name, "missing"),
            // On the server, a request body that cannot be read (too big,
            // cut off) is the caller's too; in the browser the same kind
            // means the answer could not be read.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(message) => LabError::invalid("request", message),
            other => LabError::Call(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_survive_the_wire_and_map_to_statuses() {
        let errors = [
            LabError::NotFound("no run 7".into()),
            LabError::invalid("window", "ends before it starts"),
            LabError::Unavailable("the database is unavailable".into()),
            LabError::Forbidden("viewers cannot launch".into()),
            LabError::Busy("the queue is full".into()),
            LabError::Unauthenticated("sign in first".into()),
        ];
        let statuses: Vec<u16> = errors.iter().map(LabError::status).collect();
        assert_eq!(statuses, [404, 400, 503, 403, 429, 401]);
        for error in errors {
            assert_eq!(LabError::de(error.ser()), error);
        }
        let args = LabError::from_server_fn_error(ServerFnErrorErr::Args("run_id: bad".into()));
        assert_eq!(args.status(), 400);
        let denied = LabError::from(domain::access::Denied("viewers cannot launch".into()));
        assert_eq!(denied.status(), 403);
        assert_eq!(denied.to_string(), "viewers cannot launch");
    }
}
