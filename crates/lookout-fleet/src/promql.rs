//! A client of the standard Prometheus HTTP API (`/api/v1/query`, `/query_range`,
//! `/series`), the one surface Prometheus, VictoriaMetrics, Mimir and Thanos all serve.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::FleetConfig;
use crate::http::{chain, EngineClient};

/// Largest answer read from the engine (a runaway query must not exhaust memory).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

pub type LabelSet = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No answer, or a 5xx/429: the engine is down or overloaded (try again later).
    #[error("PromQL engine unavailable: {0}")]
    Down(String),
    /// The engine answered with an error (bad query, refused credentials, …).
    #[error("PromQL engine refused the query: {0}")]
    Refused(String),
    /// The caller's parameters are out of bounds (nothing was sent to the engine).
    #[error("{0}")]
    Invalid(String),
}

/// One series of an instant vector.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: LabelSet,
    pub value: f64,
}

/// One series of a range query: `(unix seconds, value)` points.
#[derive(Debug, Clone)]
pub struct Range {
    pub labels: LabelSet,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct PromQl {
    client: EngineClient,
    base: String,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data<R> {
    result: Vec<R>,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: LabelSet,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    metric: LabelSet,
    values: Vec<(f64, String)>,
}

impl PromQl {
    pub fn new(cfg: &FleetConfig) -> Result<Option<Self>, String> {
        let Some(url) = &cfg.query_url else {
            return Ok(None);
        };
        cfg.validate()?;
        let client = EngineClient::new(
            "fleet",
            &cfg.auth,
            &cfg.tls,
            Duration::from_secs(cfg.timeout_s.max(1)),
        )?;
        Ok(Some(Self {
            client,
            base: url.trim_end_matches('/').to_owned(),
        }))
    }

    /// An instant query evaluated at `time` (unix seconds).
    pub async fn query(&self, expr: &str, time: f64) -> Result<Vec<Sample>, QueryError> {
        let data: Data<VectorItem> = self
            .get(
                "query",
                &[("query", expr.to_owned()), ("time", fmt_t(time))],
            )
            .await?;
        Ok(data
            .result
            .into_iter()
            .map(|i| Sample {
                labels: i.metric,
                value: parse_value(&i.value.1),
            })
            .collect())
    }

    pub async fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step_s: f64,
    ) -> Result<Vec<Range>, QueryError> {
        let data: Data<MatrixItem> = self
            .get(
                "query_range",
                &[
                    ("query", expr.to_owned()),
                    ("start", fmt_t(start)),
                    ("end", fmt_t(end)),
                    ("step", fmt_t(step_s)),
                ],
            )
            .await?;
        Ok(data
            .result
            .into_iter()
            .map(|i| Range {
                labels: i.metric,
                points: i
                    .values
                    .into_iter()
                    .map(|(t, v)| (t, parse_value(&v)))
                    .collect(),
            })
            .collect())
    }

    /// Label sets of the series matching `selector` with samples in `[start, end]`.
    pub async fn series(
        &self,
        selector: &str,
        start: f64,
        end: f64,
    ) -> Result<Vec<LabelSet>, QueryError> {
        self.get(
            "series",
            &[
                ("match[]", selector.to_owned()),
                ("start", fmt_t(start)),
                ("end", fmt_t(end)),
            ],
        )
        .await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<T, QueryError> {
        let url =
            reqwest::Url::parse_with_params(&format!("{}/api/v1/{endpoint}", self.base), params)
                .map_err(|e| QueryError::Invalid(format!("query URL: {e}")))?;
        let resp = self
            .client
            .request(reqwest::Method::GET, url.as_str())
            .send()
            .await
            // The engine's address stays out of answers to API clients.
            .map_err(|e| QueryError::Down(chain(&e.without_url())))?;
        let status = resp.status();
        let body = read_bounded(resp).await?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(QueryError::Down(format!(
                "HTTP {status}: {}",
                snippet(&body)
            )));
        }
        let env: Envelope<T> = serde_json::from_slice(&body).map_err(|e| {
            QueryError::Refused(format!(
                "HTTP {status}: not a PromQL API answer ({e}): {}",
                snippet(&body)
            ))
        })?;
        match (env.status.as_str(), env.data) {
            ("success", Some(d)) => Ok(d),
            _ => Err(QueryError::Refused(format!(
                "HTTP {status}: {}",
                env.error.unwrap_or_else(|| "no data".into())
            ))),
        }
    }
}

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, QueryError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| QueryError::Down(chain(&e)))?
    {
        if out.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(QueryError::Refused(format!(
                "answer larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_owned()
}

fn fmt_t(t: f64) -> String {
    format!("{t:.3}")
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or(f64::NAN),
    }
}

/// `s` as a PromQL double-quoted string literal's content.
pub fn quote(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A regex matching `s` literally, as a PromQL string's content.
pub fn literal_regex(s: &str) -> String {
    quote(&regex::escape(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_selectors_closed() {
        assert_eq!(quote(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(literal_regex("a.b\"}"), r#"a\\.b\"\\}"#);
    }

    #[test]
    fn reads_vector_and_matrix_answers() {
        let v: Envelope<Data<VectorItem>> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"value":[1700000000.5,"42"]}]}}"#,
        )
        .unwrap();
        assert_eq!(v.data.unwrap().result[0].value.1, "42");
        let m: Envelope<Data<MatrixItem>> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"NaN"],[2,"+Inf"]]}]}}"#,
        )
        .unwrap();
        assert_eq!(m.data.unwrap().result[0].values.len(), 2);
        assert!(parse_value("NaN").is_nan());
    }
}
