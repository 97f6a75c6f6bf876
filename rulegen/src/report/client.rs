//! Asks Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`) with a
//! deadline per request and a cap on the answer's size, and reads its JSON
//! answers into plain series (a pure function, tested on recorded answers).

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest answer read (a checklist's answers are a few KiB).
const ANSWER_LIMIT: u64 = 16 * 1024 * 1024;

/// One question to Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// The expression's value at `time` (unix seconds).
    Instant {
        /// PromQL.
        expr: String,
        /// Evaluation time.
        time: f64,
    },
    /// The expression over `[start, end]` every `step` seconds.
    Range {
        /// PromQL.
        expr: String,
        /// First evaluation.
        start: f64,
        /// Last evaluation.
        end: f64,
        /// Resolution in seconds.
        step: f64,
    },
}

/// One series of an answer: its labels and (time, value) points; an instant
/// answer has one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Labels, `__name__` included when Prometheus kept it.
    pub labels: BTreeMap<String, String>,
    /// (unix seconds, value), in time order.
    pub points: Vec<(f64, f64)>,
}

/// Asking failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AskError {
    /// No answer at all (refused, timed out, DNS).
    #[error("cannot reach Prometheus at {url}: {reason}")]
    Unreachable {
        /// The API URL, without credentials.
        url: String,
        /// The transport's error.
        reason: String,
    },
    /// An HTTP error status without an API error body.
    #[error("Prometheus at {url} answered HTTP {status}: {body}")]
    Http {
        /// The API URL, without credentials.
        url: String,
        /// Status code.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Prometheus understood the request and refused the query.
    #[error("query failed ({kind}): {message}")]
    Query {
        /// `bad_data`, `execution`, `timeout`, …
        kind: String,
        /// Prometheus' message.
        message: String,
    },
    /// The body is not an API answer.
    #[error("Prometheus at {url} gave an unexpected answer: {why}")]
    Malformed {
        /// The API URL, without credentials.
        url: String,
        /// What is wrong with it.
        why: String,
    },
}

impl AskError {
    /// Whether Prometheus itself cannot be asked (as opposed to one query
    /// being refused).
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, AskError::Query { .. })
    }
}

/// A Prometheus server's HTTP API.
#[derive(Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `base` (`http://host:9090`, a path prefix
    /// allowed); each request gives up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Client, AskError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        let shown = redact(&base);
        let Some(rest) = base.strip_prefix("http://") else {
            let why = if base.starts_with("https://") {
                "https is not supported by rulegen report; ask Prometheus over http on a trusted network (or through a local proxy)"
            } else {
                "expected an http:// URL such as http://127.0.0.1:9090"
            };
            return Err(AskError::Unreachable { url: shown, reason: why.to_owned() });
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(AskError::Unreachable { url: shown, reason: "the URL has no host".to_owned() });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Ok(Client { base, agent })
    }

    /// The server's URL as shown in messages (credentials removed).
    pub fn shown_url(&self) -> String {
        redact(&self.base)
    }

    /// Asks one query.
    pub fn ask(&self, query: &Query) -> Result<Vec<Series>, AskError> {
        let (path, params) = match query {
            Query::Instant { expr, time } => {
                ("query", vec![("query", expr.clone()), ("time", format!("{time:.3}"))])
            }
            Query::Range { expr, start, end, step } => (
                "query_range",
                vec![
                    ("query", expr.clone()),
                    ("start", format!("{start:.3}")),
                    ("end", format!("{end:.3}")),
                    ("step", format!("{step:.3}")),
                ],
            ),
        };
        let endpoint = format!("{}/api/v1/{path}", self.base);
        let shown = redact(&endpoint);
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &params {
            form.append_pair(key, value);
        }
        let url = format!("{endpoint}?{}", form.finish());
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| AskError::Unreachable { url: shown.clone(), reason: redact(&e.to_string()) })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_string()
            .map_err(|e| AskError::Unreachable { url: shown.clone(), reason: redact(&e.to_string()) })?;
        parse_answer(&body).map_err(|failure| match failure {
            Failure::Refused { kind, message } => AskError::Query { kind, message },
            Failure::NotAnAnswer(_) if !(200..300).contains(&status) => {
                AskError::Http { url: shown.clone(), status, body: excerpt(&body) }
            }
            Failure::NotAnAnswer(why) => AskError::Malformed { url: shown.clone(), why },
        })
    }
}

/// Why a body is not a list of series.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// `{"status":"error",...}`.
    Refused {
        /// errorType.
        kind: String,
        /// error.
        message: String,
    },
    /// Not an API answer at all.
    NotAnAnswer(String),
}

/// Reads an API answer: a vector, matrix or scalar result into series
/// (a scalar becomes one series without labels).
pub fn parse_answer(body: &str) -> Result<Vec<Series>, Failure> {
    let json: Value =
        serde_json::from_str(body).map_err(|e| Failure::NotAnAnswer(format!("not JSON ({e})")))?;
    match json.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("unknown").to_owned();
            return Err(Failure::Refused { kind: text("errorType"), message: text("error") });
        }
        _ => return Err(Failure::NotAnAnswer("no \"status\" field".to_owned())),
    }
    let data = json.get("data").ok_or_else(|| Failure::NotAnAnswer("no \"data\" field".to_owned()))?;
    let result =
        data.get("result").ok_or_else(|| Failure::NotAnAnswer("no \"data.result\" field".to_owned()))?;
    let bad = |why: &str| Failure::NotAnAnswer(why.to_owned());
    match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") => Ok(vec![Series {
            labels: BTreeMap::new(),
            points: vec![point(result).ok_or_else(|| bad("bad scalar"))?],
        }]),
        Some(kind @ ("vector" | "matrix")) => {
            let items = result.as_array().ok_or_else(|| bad("data.result is not a list"))?;
            items
                .iter()
                .map(|item| {
                    let labels = item
                        .get("metric")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let points = if kind == "vector" {
                        vec![
                            item.get("value")
                                .and_then(point)
                                .ok_or_else(|| bad("a vector sample has no value"))?,
                        ]
                    } else {
                        item.get("values")
                            .and_then(Value::as_array)
                            .ok_or_else(|| bad("a matrix series has no values"))?
                            .iter()
                            .map(|v| point(v).ok_or_else(|| bad("a matrix point is malformed")))
                            .collect::<Result<Vec<_>, _>>()?
                    };
                    Ok(Series { labels, points })
                })
                .collect()
        }
        Some(other) => Err(Failure::NotAnAnswer(format!("unexpected resultType {other:?}"))),
        None => Err(bad("no data.resultType")),
    }
}

/// `[1700000000.123, "0.5"]` (values are strings so that NaN and ±Inf survive JSON).
fn point(v: &Value) -> Option<(f64, f64)> {
    let pair = v.as_array()?;
    let time = pair.first()?.as_f64()?;
    let value = match pair.get(1)? {
        Value::String(s) => match s.as_str() {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().ok()?,
        },
        other => other.as_f64()?,
    };
    Some((time, value))
}

/// The first line of a body, bounded, for an error message.
fn excerpt(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default().trim();
    let cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() {
        format!("{cut}…")
    } else if cut.is_empty() {
        "(empty body)".to_owned()
    } else {
        cut
    }
}

/// Removes `user:password@` from URLs inside `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '?', '#', ' ', '"']).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***@");
                rest = &tail[at + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/prometheus/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_a_vector_answer() {
        let series = parse_answer(&fixture("vector.json")).expect("vector");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels.get("instance").map(String::as_str), Some("127.0.0.1:19100"));
        assert_eq!(series[0].points, vec![(1_777_856_400.0, 0.0)]);
        assert_eq!(series[1].points, vec![(1_777_856_400.0, 1.0)]);
    }

    #[test]
    fn reads_a_matrix_answer_with_special_values() {
        let series = parse_answer(&fixture("matrix.json")).expect("matrix");
        assert_eq!(series.len(), 1);
        let values: Vec<f64> = series[0].points.iter().map(|p| p.1).collect();
        assert_eq!(&values[..3], &[0.25, 0.5, f64::INFINITY]);
        assert!(values[3].is_nan());
    }

    #[test]
    fn reads_scalar_and_empty_answers() {
        let scalar = parse_answer(&fixture("scalar.json")).expect("scalar");
        assert_eq!(scalar, vec![Series { labels: BTreeMap::new(), points: vec![(1_777_856_400.0, 42.0)] }]);
        assert_eq!(parse_answer(&fixture("empty.json")).expect("empty"), Vec::new());
    }

    #[test]
    fn a_refused_query_keeps_prometheus_words() {
        let error = parse_answer(&fixture("bad_data.json")).expect_err("refused");
        assert_eq!(
            error,
            Failure::Refused {
                kind: "bad_data".into(),
                message: "invalid parameter \"query\": 1:8: parse error: unexpected <by>".into()
            }
        );
    }

    #[test]
    fn what_is_not_an_answer_says_so() {
        for body in [
            "<html>502 Bad Gateway</html>",
            "{}",
            "{\"status\":\"success\"}",
            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{}}]}}",
            "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,\"x\"]}}",
        ] {
            assert!(matches!(parse_answer(body), Err(Failure::NotAnAnswer(_))), "{body}");
        }
    }

    #[test]
    fn credentials_never_reach_a_message() {
        assert_eq!(redact("http://ops:s3cret@prom:9090/api/v1/query"), "http://***@prom:9090/api/v1/query");
        assert_eq!(
            redact("error: http://prom:9090/x and http://a:b@c/"),
            "error: http://prom:9090/x and http://***@c/"
        );
        let error = Client::new("https://ops:s3cret@prom", Duration::from_secs(1)).expect_err("https");
        assert!(!error.to_string().contains("s3cret") && error.to_string().contains("https"), "{error}");
    }
}
