//! One target's scrape loop: fetch on a fixed grid, append the page, report `up` and the
//! `scrape_*` series, and write staleness markers when the target goes away.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use super::append::{PageSettings, PageStats, ScrapeCache};
use super::parse::Format;
use super::target::Target;
use crate::config::ScrapeJob;
use crate::model::{Labels, METRIC_NAME};
use crate::tsdb::{Appender, Head, SeriesRef};

/// What the manager tells a loop when it stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The target is gone: mark its series stale.
    Removed,
    /// The loop is replaced (config change) or vigie shuts down: leave the series alone.
    Quiet,
}

const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The offset of a target's first scrape within its interval, spread by the target hash
/// (mixed with a per-server seed) so targets do not all scrape at once.
pub fn offset_in_interval(hash: u64, seed: u64, interval: Duration) -> Duration {
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis((hash ^ seed) % ms)
}

pub struct LoopContext {
    pub job: Arc<ScrapeJob>,
    pub target: Arc<Target>,
    pub client: reqwest::Client,
    pub head: Arc<Head>,
    pub seed: u64,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Runs until `stop` fires.
pub async fn run(ctx: LoopContext, mut stop: oneshot::Receiver<Stop>) {
    let interval = ctx.target.interval;
    let interval_ms = interval.as_millis() as i64;
    // Align to a global grid: the first scrape is at the next instant whose phase within
    // the interval equals this target's offset.
    let offset = offset_in_interval(ctx.target.hash, ctx.seed, interval).as_millis() as i64;
    let now = now_ms();
    let mut next = now - now.rem_euclid(interval_ms) + offset;
    if next < now {
        next += interval_ms;
    }
    let mut state = LoopState {
        cache: ScrapeCache::default(),
        report: None,
        url: reqwest::Url::parse(&ctx.target.url).map_err(|e| format!("invalid target URL {:?}: {e}", ctx.target.url)),
        timeout_header: format!("{}", ctx.target.timeout.as_secs_f64()),
        body: Vec::new(),
        page: Vec::new(),
    };
    let tolerance = (interval_ms / 100).min(2);
    loop {
        let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
        tokio::select! {
            biased;
            s = &mut stop => {
                if matches!(s, Ok(Stop::Removed)) {
                    let mut app = ctx.head.appender();
                    let t = now_ms();
                    state.cache.mark_all_stale(&mut app, t);
                    report_stale(&mut app, &ctx.target.labels, t);
                    app.commit();
                }
                return;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        let actual = now_ms();
        // Snap to the grid when within tolerance: keeps timestamp deltas constant.
        let t = if actual >= next && actual - next <= tolerance { next } else { actual };
        scrape_once(&ctx, &mut state, t).await;
        next += interval_ms;
        let now = now_ms();
        if next <= now {
            // Fell behind (suspended, overloaded): skip missed ticks, stay on the grid.
            next += ((now - next) / interval_ms + 1) * interval_ms;
        }
    }
}

/// What a loop keeps between scrapes.
struct LoopState {
    cache: ScrapeCache,
    /// The series of `up` and the `scrape_*` report, resolved on the first scrape and
    /// again when the head's series generation changes.
    report: Option<(u64, [SeriesRef; 5])>,
    url: Result<reqwest::Url, String>,
    timeout_header: String,
    /// The response body as received, and the page inflated from it when it was gzipped:
    /// kept between scrapes so a steady target costs no allocation.
    body: Vec<u8>,
    page: Vec<u8>,
}

async fn scrape_once(ctx: &LoopContext, state: &mut LoopState, t: i64) {
    let start = Instant::now();
    let fetched = fetch(ctx, state).await;
    let body: &[u8] = match &fetched {
        Ok((true, _)) => &state.page,
        _ => &state.body,
    };
    let cache = &mut state.cache;
    let mut app = ctx.head.appender();
    let settings = PageSettings { job: &ctx.job, target_labels: &ctx.target.labels };
    let result: Result<PageStats, String> = match fetched {
        Ok((_, format)) => cache.append_page(&mut app, &settings, body, format, t).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let duration = start.elapsed();
    let (up, stats, error) = match result {
        Ok(stats) => (true, stats, String::new()),
        Err(e) => {
            app.rollback();
            app = ctx.head.appender();
            cache.mark_all_stale(&mut app, t);
            (false, PageStats::default(), e)
        }
    };
    let generation = app.series_generation();
    let refs = match state.report {
        Some((g, refs)) if g == generation => refs,
        _ => {
            let refs = report_series(&mut app, &ctx.target.labels);
            state.report = Some((generation, refs));
            refs
        }
    };
    report(&mut app, refs, t, up, duration, &stats);
    let committed = app.commit();
    ctx.metrics.record_scrape(&ctx.job.name, up, committed.out_of_order + committed.duplicates);
    if !error.is_empty() {
        tracing::debug!(job = %ctx.job.name, target = %ctx.target.url, error = %error, "scrape failed");
    }
    let mut h = ctx.target.health.write();
    h.up = Some(up);
    h.last_error = error;
    h.last_scrape_ms = t;
    h.last_duration = duration;
    h.last_samples = stats.scraped;
}

/// GETs the page into `state.body` (and, when it came gzipped, inflated into `state.page`:
/// then the flag is true); returns its format, or the error the target reports.
async fn fetch(ctx: &LoopContext, state: &mut LoopState) -> Result<(bool, Format), String> {
    let timeout = ctx.target.timeout;
    let encoding = if ctx.job.enable_compression { "gzip" } else { "identity" };
    let req = ctx
        .client
        .get(state.url.clone()?)
        .header("Accept", ACCEPT)
        .header("Accept-Encoding", encoding)
        .header("User-Agent", concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .header("X-Prometheus-Scrape-Timeout-Seconds", &state.timeout_header)
        .timeout(timeout);
    let req = super::http::authorize(req, &ctx.job.http);
    let resp = req.send().await.map_err(|e| super::http::describe(&e, timeout))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let gzipped = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let limit = ctx.job.body_size_limit;
    let body = &mut state.body;
    body.clear();
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.map_err(|e| super::http::describe(&e, timeout))? {
        body.extend_from_slice(&chunk);
        if !gzipped && limit > 0 && body.len() as u64 > limit {
            return Err(format!("body size limit exceeded ({limit} bytes)"));
        }
    }
    if gzipped {
        gunzip(body, &mut state.page, limit)?;
    }
    if (if gzipped { &state.page } else { &state.body }).is_empty() {
        return Ok((gzipped, Format::PrometheusText));
    }
    let format = match Format::from_content_type(&content_type) {
        Some(f) => f,
        None => match ctx.job.source.fallback_scrape_protocol.as_deref() {
            Some(p) if p.starts_with("OpenMetrics") => Format::OpenMetrics,
            Some(p) if p.starts_with("PrometheusText") => Format::PrometheusText,
            _ if content_type.is_empty() => {
                return Err("non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target".into());
            }
            _ => {
                return Err(format!(
                    "received unsupported Content-Type {content_type:?} and no fallback_scrape_protocol specified for target"
                ));
            }
        },
    };
    Ok((gzipped, format))
}

/// Inflates a gzip body into `page` (cleared first), refusing more than `limit` bytes of
/// page (0: no limit), as Prometheus applies `body_size_limit` to the uncompressed page.
fn gunzip(body: &[u8], page: &mut Vec<u8>, limit: u64) -> Result<(), String> {
    use std::io::Read;
    page.clear();
    let cap = if limit > 0 { limit.saturating_add(1) } else { u64::MAX };
    flate2::bufread::MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(page)
        .map_err(|e| format!("decompressing the response body: {e}"))?;
    if limit > 0 && page.len() as u64 > limit {
        return Err(format!("body size limit exceeded ({limit} bytes)"));
    }
    Ok(())
}

fn synthetic(target: &Labels, name: &str) -> Labels {
    let mut lb = target.builder();
    lb.set(METRIC_NAME, name);
    lb.into_labels()
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn report_series(app: &mut impl Appender, target: &Labels) -> [SeriesRef; 5] {
    REPORT_NAMES.map(|name| app.series_ref(&synthetic(target, name)))
}

fn report(app: &mut impl Appender, refs: [SeriesRef; 5], t: i64, up: bool, d: Duration, s: &PageStats) {
    let values =
        [if up { 1.0 } else { 0.0 }, d.as_secs_f64(), s.scraped as f64, s.post_relabel as f64, s.series_added as f64];
    for (r, v) in refs.into_iter().zip(values) {
        app.append(r, t, v);
    }
}

fn report_stale(app: &mut impl Appender, target: &Labels, t: i64) {
    for name in REPORT_NAMES {
        let r = app.series_ref(&synthetic(target, name));
        app.append(r, t, crate::model::stale_nan());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::gunzip;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzipped_pages_are_inflated_within_the_body_limit() {
        let page = "up 1\n".repeat(1000);
        let mut out = b"old contents".to_vec();
        gunzip(&gz(page.as_bytes()), &mut out, 0).unwrap();
        assert_eq!(out, page.as_bytes());
        // Two gzip members back to back are one page, as Go's reader reads them.
        let mut two = gz(b"a 1\n");
        two.extend(gz(b"b 2\n"));
        gunzip(&two, &mut out, 0).unwrap();
        assert_eq!(out, b"a 1\nb 2\n");
        gunzip(&gz(page.as_bytes()), &mut out, page.len() as u64).unwrap();
        let e = gunzip(&gz(page.as_bytes()), &mut out, page.len() as u64 - 1).unwrap_err();
        assert_eq!(e, format!("body size limit exceeded ({} bytes)", page.len() - 1));
        let e = gunzip(b"not gzip at all", &mut out, 0).unwrap_err();
        assert!(e.starts_with("decompressing the response body:"), "{e}");
    }
}
