//! The Prometheus remote-write receiver, `POST /api/v1/write` (protocol 1.0): snappy-block
//! compressed protobuf in, samples into the head, 204 out.
//!
//! Contract, as Prometheus's `write_handler.go` with one deliberate difference: a batch with
//! out-of-order, duplicate or too-new samples still stores every other sample and answers
//! 400 with the rejected counts in the body (Prometheus rolls the whole batch back). 400 is
//! not retried by senders, and a resent batch is harmless: identical samples are no-ops.
//! Series without `__name__`, with invalid UTF-8 or duplicate label names are skipped and
//! counted. A log failure answers 500 so the sender retries.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;

use super::AppState;
use super::prompb::{TimeSeries, WriteRequest};
use crate::model::METRIC_NAME;
use crate::scrape::scrape_loop::now_ms;
use crate::tsdb::{Appender, CommitResult, Head};

/// Largest body accepted, compressed.
pub const MAX_COMPRESSED_BYTES: usize = 64 << 20;
/// Largest body accepted once decompressed.
const MAX_DECOMPRESSED_BYTES: usize = 512 << 20;
/// Samples further in the future than this are rejected (as Prometheus).
const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    #[error("unsupported Content-Type {0:?}: remote write 1.0 expects application/x-protobuf")]
    ContentType(String),
    #[error("unsupported Content-Encoding {0:?}: remote write expects snappy")]
    ContentEncoding(String),
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("decompressed body of {0} bytes exceeds the {MAX_DECOMPRESSED_BYTES} byte limit")]
    TooLarge(usize),
    #[error("protobuf: {0}")]
    Protobuf(String),
}

impl WriteError {
    fn status(&self) -> StatusCode {
        match self {
            WriteError::ContentType(_) | WriteError::ContentEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// What one request did to storage.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub series: usize,
    pub appended: usize,
    pub late: usize,
    pub out_of_order: usize,
    pub duplicates: usize,
    /// Older than the newest block: that time range is closed.
    pub out_of_bounds: usize,
    pub too_new: usize,
    /// Series skipped for their labels, with the first reason.
    pub invalid_series: usize,
    pub first_invalid: Option<String>,
    /// Native histograms and exemplars are not stored by this version.
    pub histograms_dropped: usize,
    pub exemplars_dropped: usize,
    pub wal_error: Option<String>,
}

impl IngestReport {
    pub fn rejected_samples(&self) -> usize {
        self.out_of_order + self.duplicates + self.too_new + self.out_of_bounds
    }
}

/// Checks the headers of a request: `Content-Type` (absent means 1.0) and `Content-Encoding`
/// (absent means snappy).
pub fn check_headers(content_type: Option<&str>, content_encoding: Option<&str>) -> Result<(), WriteError> {
    if let Some(ct) = content_type {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(WriteError::ContentType(ct.to_string()));
        }
        for p in parts {
            if let Some(proto) = p.strip_prefix("proto=")
                && proto != "prometheus.WriteRequest"
            {
                return Err(WriteError::ContentType(ct.to_string()));
            }
        }
    }
    match content_encoding {
        None => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("snappy") => Ok(()),
        Some(e) => Err(WriteError::ContentEncoding(e.to_string())),
    }
}

/// Decompresses and decodes a request body.
pub fn decode(body: &[u8]) -> Result<WriteRequest, WriteError> {
    let len = snap::raw::decompress_len(body).map_err(|e| WriteError::Snappy(e.to_string()))?;
    if len > MAX_DECOMPRESSED_BYTES {
        return Err(WriteError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| WriteError::Snappy(e.to_string()))?;
    WriteRequest::decode(Bytes::from(raw)).map_err(|e| WriteError::Protobuf(e.to_string()))
}

/// The label pairs of a series, sorted, or why the series is skipped.
fn series_pairs<'a>(ts: &'a TimeSeries, out: &mut Vec<(&'a str, &'a str)>) -> Result<(), String> {
    out.clear();
    for l in &ts.labels {
        let name = std::str::from_utf8(&l.name).map_err(|_| "label name is not valid UTF-8".to_string())?;
        let value = std::str::from_utf8(&l.value).map_err(|_| format!("value of label {name:?} is not valid UTF-8"))?;
        if name.is_empty() {
            return Err("empty label name".into());
        }
        if !value.is_empty() {
            out.push((name, value));
        }
    }
    if !out.is_sorted_by(|a, b| a.0 < b.0) {
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("duplicate label name {:?}", w[0].0));
        }
    }
    if !out.iter().any(|(n, _)| *n == METRIC_NAME) {
        return Err("series has no __name__ label".into());
    }
    Ok(())
}

/// Appends every valid sample of `req` to `head` in one commit.
pub fn ingest(head: &Arc<Head>, req: &WriteRequest, now_ms: i64) -> IngestReport {
    let mut report = IngestReport::default();
    let mut app = head.appender();
    let mut pairs = Vec::with_capacity(16);
    let newest_allowed = now_ms.saturating_add(MAX_FUTURE_MS);
    for ts in &req.timeseries {
        report.histograms_dropped += ts.histograms.len();
        report.exemplars_dropped += ts.exemplars.len();
        if ts.samples.is_empty() {
            continue;
        }
        if let Err(why) = series_pairs(ts, &mut pairs) {
            report.invalid_series += 1;
            report.first_invalid.get_or_insert(why);
            continue;
        }
        report.series += 1;
        let r = head.get_or_create_pairs(&pairs);
        for s in &ts.samples {
            if s.timestamp > newest_allowed {
                report.too_new += 1;
            } else {
                app.append(r, s.timestamp, s.value);
            }
        }
    }
    let CommitResult { appended, out_of_order, duplicates, late, out_of_bounds, wal_error, .. } = app.commit();
    report.out_of_bounds = out_of_bounds;
    report.appended = appended;
    report.late = late;
    report.out_of_order = out_of_order;
    report.duplicates = duplicates;
    report.wal_error = wal_error;
    report
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).map(|v| v.to_str().unwrap_or("<non-ASCII>"))
}

/// `POST /api/v1/write`.
pub async fn write(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let refused = |e: WriteError, st: &AppState| {
        st.metrics.record_remote_write(e.status().as_u16(), None);
        tracing::warn!(error = %e, "remote write request refused");
        (e.status(), e.to_string()).into_response()
    };
    if let Err(e) =
        check_headers(header_str(&headers, header::CONTENT_TYPE), header_str(&headers, header::CONTENT_ENCODING))
    {
        return refused(e, &st);
    }
    let head = st.db.head().clone();
    let result = tokio::task::spawn_blocking(move || decode(&body).map(|req| ingest(&head, &req, now_ms()))).await;
    let report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return refused(e, &st),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if let Some(why) = &report.first_invalid {
        tracing::warn!(skipped = report.invalid_series, first = %why, "remote write series skipped");
    }
    let written = HeaderValue::from(report.appended);
    let mut resp = if let Some(e) = &report.wal_error {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("samples could not be logged: {e}")).into_response()
    } else if report.rejected_samples() > 0 {
        let msg = format!(
            "{} samples rejected: {} out of order, {} duplicate timestamp, {} out of bounds, {} too far in the future; {} written",
            report.rejected_samples(),
            report.out_of_order,
            report.duplicates,
            report.out_of_bounds,
            report.too_new,
            report.appended
        );
        tracing::warn!(message = %msg, "remote write samples rejected");
        (StatusCode::BAD_REQUEST, msg).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    st.metrics.record_remote_write(resp.status().as_u16(), Some(&report));
    resp.headers_mut().insert("X-Prometheus-Remote-Write-Samples-Written", written);
    resp
}

#[cfg(test)]
mod tests;
