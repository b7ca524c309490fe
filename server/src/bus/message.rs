//! mite's messages, decoded from msgpack without copying their strings:
//! the map is walked once, keeping only the fields the lab counts
//! (shared/MITE-NOTES.md lists them); every other message type is
//! [`BusMessage::Other`].

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

/// The fields the lab reads of one message (the rest are skipped as the
/// map is walked: no allocation for a message of scalars and strings).
#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    time: Option<ValueRef<'a>>,
    transaction: Option<&'a str>,
    response_code: Option<ValueRef<'a>>,
    total_time: Option<ValueRef<'a>>,
    had_error: Option<ValueRef<'a>>,
    ex_type: Option<&'a str>,
    message: Option<&'a str>,
    required: Option<ValueRef<'a>>,
    actual: Option<ValueRef<'a>>,
    num_runners: Option<ValueRef<'a>>,
}

impl<'a> Fields<'a> {
    /// Walks a msgpack map, keeping the fields the lab reads: keys are
    /// compared as bytes, the values of the rest skipped by their length
    /// (decoding every key and value costs 3 times as much: BENCHMARKS.md).
    fn read(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let not_msgpack = |e: &dyn std::fmt::Display| DecodeError::NotMsgpack(e.to_string());
        let cut = || DecodeError::NotMsgpack("a message cut short".into());
        let mut rd = frame;
        let len = match rmp::decode::read_map_len(&mut rd) {
            Ok(len) => len,
            Err(rmp::decode::ValueReadError::TypeMismatch(_)) => return Err(DecodeError::NotAMap),
            Err(e) => return Err(not_msgpack(&e)),
        };
        let mut fields = Fields::default();
        for _ in 0..len {
            // mite's keys are short strings: compared as bytes, unchecked.
            let key: &[u8] = match rd.first() {
                Some(&marker @ 0xa0..=0xbf) => {
                    let len = usize::from(marker & 0x1f);
                    let key = rd.get(1..1 + len).ok_or_else(cut)?;
                    rd = &rd[1 + len..];
                    key
                }
                _ => {
                    rd = skip(rd).ok_or_else(cut)?;
                    &[]
                }
            };
            let wanted = matches!(
                key,
                b"type"
                    | b"time"
                    | b"transaction"
                    | b"response_code"
                    | b"total_time"
                    | b"had_error"
                    | b"ex_type"
                    | b"message"
                    | b"required"
                    | b"actual"
                    | b"num_runners"
            );
            if !wanted {
                rd = skip(rd).ok_or_else(cut)?;
                continue;
            }
            let value = rmpv::decode::read_value_ref(&mut rd).map_err(|e| not_msgpack(&e))?;
            match key {
                b"type" => fields.kind = as_str(&value),
                b"time" => fields.time = Some(value),
                b"transaction" => fields.transaction = as_str(&value),
                b"response_code" => fields.response_code = Some(value),
                b"total_time" => fields.total_time = Some(value),
                b"had_error" => fields.had_error = Some(value),
                b"ex_type" => fields.ex_type = as_str(&value),
                b"message" => fields.message = as_str(&value),
                b"required" => fields.required = Some(value),
                b"actual" => fields.actual = Some(value),
                _ => fields.num_runners = Some(value),
            }
        }
        Ok(fields)
    }

    fn need<T>(
        value: &Option<ValueRef<'a>>,
        kind: &'static str,
        field: &'static str,
        read: impl Fn(&ValueRef<'a>) -> Option<T>,
    ) -> Result<T, DecodeError> {
        value
            .as_ref()
            .and_then(read)
            .ok_or(DecodeError::MissingField { kind, field })
    }

    /// The transaction, with mite's root prefix left out.
    fn transaction(&self) -> &'a str {
        transaction_name(self.transaction.unwrap_or(""))
    }
}

/// The rest of `buf` after its first msgpack value; `None` when it is cut
/// short or not msgpack.
fn skip(buf: &[u8]) -> Option<&[u8]> {
    let (&marker, rest) = buf.split_first()?;
    let be = |n: usize| -> Option<usize> {
        let bytes = rest.get(..n)?;
        Some(
            bytes
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b)),
        )
    };
    // (bytes of the length field, then that many bytes) or a fixed size,
    // or a container of that many values.
    let (header, body, values) = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
        0x80..=0x8f => (0, 0, 2 * usize::from(marker & 0x0f)),
        0x90..=0x9f => (0, 0, usize::from(marker & 0x0f)),
        0xa0..=0xbf => (0, usize::from(marker & 0x1f), 0),
        0xc4 | 0xd9 => (1, be(1)?, 0),
        0xc5 | 0xda => (2, be(2)?, 0),
        0xc6 | 0xdb => (4, be(4)?, 0),
        0xc7 => (1, be(1)? + 1, 0),
        0xc8 => (2, be(2)? + 1, 0),
        0xc9 => (4, be(4)? + 1, 0),
        0xca => (0, 4, 0),
        0xcb => (0, 8, 0),
        0xcc | 0xd0 => (0, 1, 0),
        0xcd | 0xd1 => (0, 2, 0),
        0xce | 0xd2 => (0, 4, 0),
        0xcf | 0xd3 => (0, 8, 0),
        0xd4 => (0, 2, 0),
        0xd5 => (0, 3, 0),
        0xd6 => (0, 5, 0),
        0xd7 => (0, 9, 0),
        0xd8 => (0, 17, 0),
        0xdc => (2, 0, be(2)?),
        0xdd => (4, 0, be(4)?),
        0xde => (2, 0, 2 * be(2)?),
        0xdf => (4, 0, 2 * be(4)?),
        0xc1 => return None,
    };
    let mut rest = rest.get(header + body..)?;
    for _ in 0..values {
        rest = skip(rest)?;
    }
    Some(rest)
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
    let f = Fields::read(frame)?;
    let Some(kind) = f.kind else {
        return Ok(BusMessage::Other);
    };
    Ok(match kind {
        "http_metrics" => BusMessage::Response {
            transaction: f.transaction(),
            time: Fields::need(&f.time, "http_metrics", "time", as_f64)?,
            status: Fields::need(&f.response_code, "http_metrics", "response_code", |v| {
                v.as_u64().and_then(|n| u16::try_from(n).ok())
            })?,
            total_time: Fields::need(&f.total_time, "http_metrics", "total_time", as_f64)?,
        },
        "txn" => BusMessage::TransactionEnd {
            transaction: f.transaction(),
            time: Fields::need(&f.time, "txn", "time", as_f64)?,
            had_error: f.had_error.as_ref().and_then(as_bool).unwrap_or(false),
        },
        "exception" | "error" => BusMessage::Error {
            transaction: f.transaction(),
            time: Fields::need(&f.time, "exception", "time", as_f64)?,
            kind: f
                .ex_type
                .filter(|k| !k.is_empty())
                .unwrap_or(if kind == "error" {
                    "error"
                } else {
                    "exception"
                }),
            message: f.message.unwrap_or(""),
        },
        "controller_report" => BusMessage::ControllerReport {
            time: Fields::need(&f.time, "controller_report", "time", as_f64)?,
            required: Fields::need(&f.required, "controller_report", "required", map_sum)?,
            actual: Fields::need(&f.actual, "controller_report", "actual", map_sum)?,
            runners: f
                .num_runners
                .as_ref()
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
    fn skipping_steps_over_every_kind_of_value() {
        use rmpv::Value;
        let values = [
            Value::Nil,
            Value::from(true),
            Value::from(7),
            Value::from(-7),
            Value::from(300),
            Value::from(-300),
            Value::from(70_000),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
            Value::F32(1.5),
            Value::from(2.5),
            Value::from("short"),
            Value::from("x".repeat(40)),
            Value::from("y".repeat(300)),
            Value::from("z".repeat(70_000)),
            Value::Binary(vec![1; 3]),
            Value::Binary(vec![1; 300]),
            Value::from(vec![Value::from(1); 3]),
            Value::from(vec![Value::from("a"); 20]),
            Value::Map(vec![(Value::from(1), Value::from("a")); 3]),
            Value::Map(vec![(Value::from("k"), Value::Nil); 20]),
            Value::Ext(1, vec![0; 1]),
            Value::Ext(1, vec![0; 4]),
            Value::Ext(1, vec![0; 5]),
        ];
        for value in values {
            let mut buf = Vec::new();
            rmpv::encode::write_value(&mut buf, &value).expect("encodes");
            buf.push(0x2a);
            assert_eq!(skip(&buf), Some(&[0x2a][..]), "{value:?}");
            assert_eq!(skip(&buf[..buf.len() - 2]), None, "cut short: {value:?}");
        }
    }

    #[test]
    fn root_prefixes_are_left_out() {
        assert_eq!(transaction_name("__root__ :: a :: b"), "a :: b");
        assert_eq!(transaction_name("__root__"), "");
        assert_eq!(transaction_name("other"), "other");
    }
}
