//! Handlers of the Prometheus HTTP API v1 and the operational endpoints.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use super::AppState;
use super::params::Params;
use super::response::{ApiError, success};
use super::time::format_rfc3339;
use crate::config::PromDuration;
use crate::model::Labels;
use crate::promql::{self, RangeSeries, Sample, Value, format_value};
use crate::scrape::scrape_loop::now_ms;
use crate::tsdb::{Matcher, Querier};

type St = State<Arc<AppState>>;

/// Prometheus caps range queries at 11,000 points per series.
const MAX_POINTS: i64 = 11_000;

fn labels_json(l: &Labels) -> Json {
    let mut m = Map::new();
    for l in l {
        m.insert(l.name.clone(), Json::String(l.value.clone()));
    }
    Json::Object(m)
}

/// Seconds as Prometheus writes them: `1435781451.781`, and `1435781451` for whole seconds.
fn ts_json(ms: i64) -> Json {
    if ms % 1000 == 0 { json!(ms / 1000) } else { json!(ms as f64 / 1000.0) }
}

fn vector_json(v: &[Sample], t: i64) -> Json {
    Json::Array(
        v.iter().map(|s| json!({"metric": labels_json(&s.labels), "value": [ts_json(t), format_value(s.v)]})).collect(),
    )
}

fn matrix_json(m: &[RangeSeries]) -> Json {
    Json::Array(
        m.iter()
            .map(|s| {
                let values: Vec<Json> = s.points.iter().map(|p| json!([ts_json(p.t), format_value(p.v)])).collect();
                json!({"metric": labels_json(&s.labels), "values": values})
            })
            .collect(),
    )
}

/// `stats` as Prometheus puts it in `data` when the request asks with `stats=…`.
fn stats_json(s: &promql::QueryStats) -> Json {
    let total = s.queue_s + s.prepare_s + s.eval_s;
    json!({
        "timings": {
            "evalTotalTime": s.prepare_s + s.eval_s,
            "resultSortTime": 0.0,
            "queryPreparationTime": s.prepare_s,
            "innerEvalTime": s.eval_s,
            "execQueueTime": s.queue_s,
            "execTotalTime": total,
        },
        "samples": {"totalQueryableSamples": s.total_samples, "peakSamples": s.peak_samples},
    })
}

/// A whole range-query response written straight into bytes: a result can hold millions
/// of points, and a JSON value tree would allocate several times per point.
fn matrix_response(m: &[RangeSeries], stats: Option<Json>) -> Response {
    let points: usize = m.iter().map(|s| s.points.len()).sum();
    let mut out: Vec<u8> = Vec::with_capacity(64 + points * 24);
    out.extend_from_slice(br#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (i, s) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":{"#);
        for (j, l) in s.labels.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut out, &l.name);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, &l.value);
        }
        out.extend_from_slice(br#"},"values":["#);
        for (j, p) in s.points.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'[');
            let _ = serde_json::to_writer(&mut out, &ts_json(p.t));
            out.extend_from_slice(b",\"");
            out.extend_from_slice(format_value(p.v).as_bytes());
            out.extend_from_slice(b"\"]");
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if let Some(stats) = stats {
        out.extend_from_slice(br#","stats":"#);
        let _ = serde_json::to_writer(&mut out, &stats);
    }
    out.extend_from_slice(b"}}");
    ([(axum::http::header::CONTENT_TYPE, "application/json")], out).into_response()
}

async fn evaluate<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, promql::QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
        .map_err(ApiError::from)
}

pub async fn query(State(s): St, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::from_request(&method, &uri, &headers, &body);
    let run = async {
        let q = p
            .get("query")
            .ok_or_else(|| ApiError::BadData("invalid parameter \"query\": query must not be empty".into()))?
            .to_string();
        let t = p.time("time", now_ms())?;
        let engine = s.engine.clone();
        let want_stats = p.get("stats").is_some_and(|v| !v.is_empty());
        let (v, stats) = evaluate(move || engine.instant_with_stats(&q, t)).await?;
        let mut data = match &v {
            Value::Scalar(f) => json!({"resultType": "scalar", "result": [ts_json(t), format_value(*f)]}),
            Value::String(st) => json!({"resultType": "string", "result": [ts_json(t), st]}),
            Value::Vector(samples) => json!({"resultType": "vector", "result": vector_json(samples, t)}),
            Value::Matrix(m) => json!({"resultType": "matrix", "result": matrix_json(m)}),
        };
        if want_stats {
            data["stats"] = stats_json(&stats);
        }
        Ok::<_, ApiError>(success(data))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn query_range(State(s): St, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::from_request(&method, &uri, &headers, &body);
    let run = async {
        let q = p
            .get("query")
            .ok_or_else(|| ApiError::BadData("invalid parameter \"query\": query must not be empty".into()))?
            .to_string();
        let start = p.get("start").ok_or_else(|| ApiError::BadData("invalid parameter \"start\": missing".into()))?;
        let start = super::time::parse_time(start)
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"start\": {e}")))?;
        let end = p.get("end").ok_or_else(|| ApiError::BadData("invalid parameter \"end\": missing".into()))?;
        let end =
            super::time::parse_time(end).map_err(|e| ApiError::BadData(format!("invalid parameter \"end\": {e}")))?;
        if end < start {
            return Err(ApiError::BadData(
                "invalid parameter \"end\": end timestamp must not be before start time".into(),
            ));
        }
        let step =
            p.duration("step")?.ok_or_else(|| ApiError::BadData("invalid parameter \"step\": missing".into()))?;
        if step <= 0 {
            return Err(ApiError::BadData(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if (end - start) / step > MAX_POINTS {
            return Err(ApiError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let engine = s.engine.clone();
        let want_stats = p.get("stats").is_some_and(|v| !v.is_empty());
        let (m, stats) = evaluate(move || engine.range_with_stats(&q, start, end, step)).await?;
        Ok::<_, ApiError>(matrix_response(&m, want_stats.then(|| stats_json(&stats))))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Parses the `match[]` selectors of series/labels requests.
fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .into_iter()
        .map(|m| {
            promql::selector_matchers(m).map_err(|e| ApiError::BadData(format!("invalid parameter \"match[]\": {e}")))
        })
        .collect()
}

fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((p.time("start", i64::MIN)?, p.time("end", i64::MAX)?))
}

pub async fn series(State(s): St, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::from_request(&method, &uri, &headers, &body);
    let run = || {
        let sels = selectors(&p)?;
        if sels.is_empty() {
            return Err(ApiError::BadData("no match[] parameter provided".into()));
        }
        let (mint, maxt) = time_range(&p)?;
        let mut all: Vec<Labels> = sels.iter().flat_map(|m| s.db.series(m, mint, maxt)).collect();
        all.sort();
        all.dedup();
        Ok(success(Json::Array(all.iter().map(labels_json).collect())))
    };
    run().unwrap_or_else(|e: ApiError| e.into_response())
}

fn names_or_values(s: &AppState, p: &Params, name: Option<&str>) -> Result<Vec<String>, ApiError> {
    let sels = selectors(p)?;
    let (mint, maxt) = time_range(p)?;
    let fetch = |m: &[Matcher]| match name {
        Some(n) => s.db.label_values(n, m, mint, maxt),
        None => s.db.label_names(m, mint, maxt),
    };
    let mut out: Vec<String> = if sels.is_empty() { fetch(&[]) } else { sels.iter().flat_map(|m| fetch(m)).collect() };
    out.sort();
    out.dedup();
    Ok(out)
}

pub async fn labels(State(s): St, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::from_request(&method, &uri, &headers, &body);
    match names_or_values(&s, &p, None) {
        Ok(v) => success(json!(v)),
        Err(e) => e.into_response(),
    }
}

pub async fn label_values(
    State(s): St,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let p = Params::from_request(&method, &uri, &headers, &[]);
    match names_or_values(&s, &p, Some(&name)) {
        Ok(v) => success(json!(v)),
        Err(e) => e.into_response(),
    }
}

pub async fn targets(State(s): St, uri: Uri) -> Response {
    let p = Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &[]);
    let state = p.get("state").unwrap_or("any");
    let pool_filter = p.get("scrapePool");
    let view = s.targets.read().clone();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts = Map::new();
    for (job, pool) in &view {
        if pool_filter.is_some_and(|f| f != job) {
            continue;
        }
        dropped_counts.insert(job.clone(), json!(pool.dropped.len()));
        if state == "any" || state == "active" {
            for t in &pool.active {
                let h = t.health.read().clone();
                active.push(json!({
                    "discoveredLabels": labels_json(&t.discovered),
                    "labels": labels_json(&t.labels),
                    "scrapePool": job,
                    "scrapeUrl": t.url,
                    "globalUrl": t.url,
                    "lastError": h.last_error,
                    "lastScrape": if h.last_scrape_ms == 0 { "0001-01-01T00:00:00Z".to_string() } else { format_rfc3339(h.last_scrape_ms) },
                    "lastScrapeDuration": h.last_duration.as_secs_f64(),
                    "health": match h.up { None => "unknown", Some(true) => "up", Some(false) => "down" },
                    "scrapeInterval": PromDuration(t.interval).to_string(),
                    "scrapeTimeout": PromDuration(t.timeout).to_string(),
                }));
            }
        }
        if state == "any" || state == "dropped" {
            for d in &pool.dropped {
                let mut entry = json!({"discoveredLabels": labels_json(&d.discovered), "scrapePool": job});
                if let Some(e) = &d.error {
                    entry["error"] = json!(e);
                }
                dropped.push(entry);
            }
        }
    }
    // vigie's addition: discovery that fails shows next to the targets it would give.
    let discovery_errors = crate::discovery::status::errors();
    success(json!({
        "activeTargets": active,
        "droppedTargets": dropped,
        "droppedTargetCounts": dropped_counts,
        "discoveryErrors": discovery_errors,
    }))
}

/// `--monitors-dir` objects with their status (accepted, error, jobs, rule groups).
pub async fn status_monitors(State(s): St) -> Response {
    let reports = s.monitors.read().clone();
    success(json!(reports))
}

pub async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("VIGIE_GIT_REVISION").unwrap_or("unknown"),
        "branch": "main",
        "buildUser": "vigie",
        "buildDate": "unknown",
        "goVersion": "none (vigie is written in Rust)",
    }))
}

pub async fn status_config(State(s): St) -> Response {
    let cfg = s.config.borrow().clone();
    success(json!({"yaml": cfg.yaml}))
}

pub async fn flags(State(s): St) -> Response {
    success(json!(s.flags))
}

pub async fn runtimeinfo(State(s): St) -> Response {
    let st = s.db.head().stats();
    success(json!({
        "startTime": format_rfc3339(s.started_ms),
        "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "reloadConfigSuccess": true,
        "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "storageRetention": s.flags.get("retention").cloned().unwrap_or_default(),
        "headSeries": st.series,
    }))
}

/// `/api/v1/status/tsdb` in Prometheus's shape; `limit` (default 10) bounds each list.
pub async fn status_tsdb(State(s): St, uri: Uri) -> Result<Response, ApiError> {
    let limit = match uri.query().and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "limit")) {
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::BadData(format!("limit must be a positive number, got {v:?}")))?,
        None => 10,
    };
    let head = s.db.head();
    let st = head.stats();
    let c = head.cardinality(limit);
    let list =
        |v: &[(String, u64)]| -> Json { v.iter().map(|(name, value)| json!({"name": name, "value": value})).collect() };
    let (min_t, max_t) = head.time_range().unwrap_or((0, 0));
    Ok(success(json!({
        "headStats": {
            "numSeries": st.series,
            "numLabelPairs": c.num_label_pairs,
            "chunkCount": c.chunk_count,
            "minTime": min_t,
            "maxTime": max_t,
        },
        "seriesCountByMetricName": list(&c.series_count_by_metric_name),
        "labelValueCountByLabelName": list(&c.label_value_count_by_label_name),
        "memoryInBytesByLabelName": list(&c.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": list(&c.series_count_by_label_value_pair),
    })))
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=true]`.
pub async fn snapshot(State(s): St, uri: Uri) -> Result<Response, ApiError> {
    let skip_head = uri
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "skip_head"))
        .is_some_and(|(_, v)| v == "true" || v == "1");
    let db = s.db.clone();
    let name = tokio::task::spawn_blocking(move || db.snapshot(now_ms(), skip_head))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("create snapshot: {e}")))?;
    Ok(success(json!({"name": name})))
}

pub async fn self_metrics(State(s): St) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
        .into_response()
}

pub async fn healthy() -> Response {
    (StatusCode::OK, "Vigie is Healthy.\n").into_response()
}

pub async fn ready(State(s): St) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Vigie is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

pub async fn reload(State(s): St) -> Response {
    let reload = s.reload.clone();
    match tokio::task::spawn_blocking(move || reload()).await {
        Ok(Ok(())) => (StatusCode::OK, "").into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("reload task failed: {e}\n")).into_response(),
    }
}

pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"status": "error", "errorType": "not_found", "error": "not found"})),
        )
            .into_response();
    }
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::Point;

    #[test]
    fn written_matrix_equals_the_json_tree() {
        let m = vec![
            RangeSeries {
                labels: Labels::from_pairs([("__name__", "m"), ("q", "a \"quoted\"\n\\ value")]),
                points: vec![
                    Point { t: 1_435_781_451_781, v: 1.5 },
                    Point { t: 1_435_781_452_000, v: f64::NAN },
                    Point { t: 1_435_781_452_450, v: f64::NEG_INFINITY },
                    Point { t: -1_500, v: 1e-300 },
                ],
            },
            RangeSeries { labels: Labels::empty(), points: vec![Point { t: 0, v: 0.0 }] },
        ];
        let resp = matrix_response(&m, None);
        let body = futures_body(resp);
        let got: Json = serde_json::from_slice(&body).unwrap();
        let want = json!({"status": "success", "data": {"resultType": "matrix", "result": matrix_json(&m)}});
        assert_eq!(got, want);
        let stats = promql::QueryStats { total_samples: 7, peak_samples: 9, ..Default::default() };
        let got: Json = serde_json::from_slice(&futures_body(matrix_response(&m, Some(stats_json(&stats))))).unwrap();
        assert_eq!(got["data"]["stats"]["samples"], json!({"totalQueryableSamples": 7, "peakSamples": 9}));
        assert_eq!(got["data"]["result"], want["data"]["result"]);
    }

    fn futures_body(resp: Response) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec() })
    }
}
