//! mite's messages, decoded from msgpack without copying their strings.
//! Only the fields the lab counts are read (shared/MITE-NOTES.md lists them);
//! every other message type is [`BusMessage::Other`].

use rmpv::ValueRef;

/// A message the lab counts.
#[derive(Debug, Clone, PartialEq)]
pub enum BusMessage<'a> {
    /// `http_metrics`: one response, any status.
    Response {
        transaction: &'a str,
        /// Unix seconds.
        time: f64,
        status: u16,
        /// Seconds from the request to the last byte (libcurl's `total_time`).
        total_time: f64,
    },
    /// `txn`: a transaction ended.
    TransactionEnd {
        transaction: &'a str,
        time: f64,
        had_error: bool,
    },
    /// `exception` or `error`: the journey raised, or a request failed
    /// without a response.
    Error {
        transaction: &'a str,
        time: f64,
        kind: &'a str,
        message: &'a str,
    },
    /// `controller_report`: journeys required and running, summed over the
    /// controller's scenarios, and the runners it sees.
    ControllerReport {
        time: f64,
        required: i64,
        actual: i64,
        runners: i64,
    },
    /// Anything else (mite's own stats, a future message type).
    Other,
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not msgpack: {0}")]
    NotMsgpack(String),
    #[error("a message that is not a map")]
    NotAMap,
    #[error("a `{kind}` message without a usable `{field}`")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
}

fn as_str<'a>(value: &ValueRef<'a>) -> Option<&'a str> {
    match value {
        ValueRef::String(s) => s.into_str(),
        ValueRef::Binary(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn as_f64(value: &ValueRef<'_>) -> Option<f64> {
    match value {
        ValueRef::F64(f) => Some(*f),
        ValueRef::F32(f) => Some(f64::from(*f)),
        ValueRef::Integer(n) => n.as_f64(),
        _ => None,
    }
}

fn as_bool(value: &ValueRef<'_>) -> Option<bool> {
    match value {
        ValueRef::Boolean(b) => Some(*b),
        ValueRef::Nil => Some(false),
        _ => None,
    }
}

/// The sum of a map's integer values (`required` and `actual` are keyed by
/// mite's scenario id, an integer).
fn map_sum(value: &ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Map(entries) => entries.iter().map(|(_, v)| v.as_u64()).sum::<Option<u64>>(),
        ValueRef::Nil => Some(0),
        _ => None,
    }
    .map(|n| n as i64)
}

/// One message's fields, looked up by name.
struct Fields<'m, 'a>(&'m [(ValueRef<'a>, ValueRef<'a>)]);

impl<'a> Fields<'_, 'a> {
    fn get(&self, name: &str) -> Option<&ValueRef<'a>> {
        self.0
            .iter()
            .find(|(k, _)| as_str(k) == Some(name))
            .map(|(_, v)| v)
    }

    fn need<T>(
        &self,
        kind: &'static str,
        field: &'static str,
        read: impl Fn(&ValueRef<'a>) -> Option<T>,
    ) -> Result<T, DecodeError> {
        self.get(field)
            .and_then(read)
            .ok_or(DecodeError::MissingField { kind, field })
    }

    /// The transaction, with mite's root prefix left out.
    fn transaction(&self) -> &'a str {
        let name = self.get("transaction").and_then(as_str).unwrap_or("");
        transaction_name(name)
    }
}

/// `__root__ :: browse` is `browse`; `__root__` alone (requests outside a
/// named transaction) is the empty name.
pub fn transaction_name(raw: &str) -> &str {
    match raw.strip_prefix("__root__") {
        Some(rest) => rest.strip_prefix(" :: ").unwrap_or(rest),
        None => raw,
    }
}

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<BusMessage<'_>, DecodeError> {
    let mut reader = frame;
    let value = rmpv::decode::read_value_ref(&mut reader)
        .map_err(|e| DecodeError::NotMsgpack(e.to_string()))?;
    let ValueRef::Map(entries) = &value else {
        return Err(DecodeError::NotAMap);
    };
    let fields = Fields(entries);
    let Some(kind) = fields.get("type").and_then(as_str) else {
        return Ok(BusMessage::Other);
    };
    Ok(match kind {
        "http_metrics" => BusMessage::Response {
            transaction: fields.transaction(),
            time: fields.need("http_metrics", "time", as_f64)?,
            status: fields.need("http_metrics", "response_code", |v| {
                v.as_u64().and_then(|n| u16::try_from(n).ok())
            })?,
            total_time: fields.need("http_metrics", "total_time", as_f64)?,
        },
        "txn" => BusMessage::TransactionEnd {
            transaction: fields.transaction(),
            time: fields.need("txn", "time", as_f64)?,
            had_error: fields.get("had_error").and_then(as_bool).unwrap_or(false),
        },
        "exception" | "error" => BusMessage::Error {
            transaction: fields.transaction(),
            time: fields.need("exception", "time", as_f64)?,
            kind: fields
                .get("ex_type")
                .and_then(as_str)
                .filter(|k| !k.is_empty())
                .unwrap_or(if kind == "error" {
                    "error"
                } else {
                    "exception"
                }),
            message: fields.get("message").and_then(as_str).unwrap_or(""),
        },
        "controller_report" => BusMessage::ControllerReport {
            time: fields.need("controller_report", "time", as_f64)?,
            required: fields.need("controller_report", "required", map_sum)?,
            actual: fields.need("controller_report", "actual", map_sum)?,
            runners: fields
                .get("num_runners")
                .and_then(ValueRef::as_u64)
                .unwrap_or(0) as i64,
        },
        _ => BusMessage::Other,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rmpv::Value;

    /// A message as mite's msgpack encoder writes it.
    pub(crate) fn encode(fields: Vec<(&str, Value)>) -> Vec<u8> {
        let map = Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        );
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &map).expect("encodes");
        out
    }

    pub(crate) fn response(transaction: &str, time: f64, status: u16, total: f64) -> Vec<u8> {
        encode(vec![
            ("type", "http_metrics".into()),
            ("time", time.into()),
            ("transaction", transaction.into()),
            ("response_code", Value::from(status)),
            ("total_time", total.into()),
            ("method", Value::Binary(b"GET".to_vec())),
        ])
    }

    #[test]
    fn a_response_keeps_its_status_timing_and_transaction() {
        let frame = response("__root__ :: checkout", 1_700_000_000.25, 500, 0.0123);
        assert_eq!(
            decode(&frame),
            Ok(BusMessage::Response {
                transaction: "checkout",
                time: 1_700_000_000.25,
                status: 500,
                total_time: 0.0123,
            })
        );
    }

    #[test]
    fn exceptions_errors_and_transaction_ends_decode() {
        let frame = encode(vec![
            ("type", "exception".into()),
            ("time", 5.0.into()),
            ("transaction", "__root__ :: test".into()),
            ("ex_type", "AcurlError".into()),
            ("message", "curl failed with code 7".into()),
        ]);
        assert_eq!(
            decode(&frame),
            Ok(BusMessage::Error {
                transaction: "test",
                time: 5.0,
                kind: "AcurlError",
                message: "curl failed with code 7",
            })
        );
        let frame = encode(vec![
            ("type", "txn".into()),
            ("time", 6.0.into()),
            ("transaction", "__root__".into()),
            ("had_error", true.into()),
        ]);
        assert_eq!(
            decode(&frame),
            Ok(BusMessage::TransactionEnd {
                transaction: "",
                time: 6.0,
                had_error: true
            })
        );
    }

    #[test]
    fn a_controller_report_sums_its_integer_keyed_maps() {
        let frame = encode(vec![
            ("type", "controller_report".into()),
            ("time", 7.5.into()),
            (
                "required",
                Value::Map(vec![(1.into(), 10.into()), (2.into(), 5.into())]),
            ),
            ("actual", Value::Map(vec![(1.into(), 9.into())])),
            ("num_runners", 2.into()),
        ]);
        assert_eq!(
            decode(&frame),
            Ok(BusMessage::ControllerReport {
                time: 7.5,
                required: 15,
                actual: 9,
                runners: 2
            })
        );
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        // A map of one entry, cut short.
        assert!(matches!(
            decode(&[0x81, 0xa1]),
            Err(DecodeError::NotMsgpack(_))
        ));
        assert!(matches!(decode(&[]), Err(DecodeError::NotMsgpack(_))));
        let mut list = Vec::new();
        rmpv::encode::write_value(&mut list, &Value::from(vec![Value::from(1)])).expect("encodes");
        assert_eq!(decode(&list), Err(DecodeError::NotAMap));
        let no_time = encode(vec![("type", "http_metrics".into())]);
        assert_eq!(
            decode(&no_time),
            Err(DecodeError::MissingField {
                kind: "http_metrics",
                field: "time"
            })
        );
        let stats = encode(vec![("type", "data_created".into())]);
        assert_eq!(decode(&stats), Ok(BusMessage::Other));
    }

    #[test]
    fn root_prefixes_are_left_out() {
        assert_eq!(transaction_name("__root__ :: a :: b"), "a :: b");
        assert_eq!(transaction_name("__root__"), "");
        assert_eq!(transaction_name("other"), "other");
    }
}
