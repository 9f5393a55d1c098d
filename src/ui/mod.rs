//! Web pages. For now a home page that lists the targets and links to the API; the full UI
//! comes with its own issue.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use crate::api::AppState;
use crate::api::time::format_rfc3339;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub async fn home(State(s): State<Arc<AppState>>) -> Html<String> {
    let view = s.targets.read().clone();
    let mut body = String::new();
    let _ = write!(
        body,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vigie</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}}table{{border-collapse:collapse;width:100%}}\
         th,td{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;font-size:.9rem}}.up{{color:#070}}.down{{color:#b00}}\
         code{{background:#f4f4f4;padding:0 .2rem}}</style></head><body><h1>vigie</h1>\
         <p>Version {}. API: <a href=\"/api/v1/targets\">targets</a> · <a href=\"/api/v1/query?query=up\">query up</a> · \
         <a href=\"/api/v1/labels\">labels</a> · <a href=\"/api/v1/status/config\">config</a> · \
         <a href=\"/api/v1/status/flags\">flags</a> · <a href=\"/api/v1/status/buildinfo\">build</a> · <a href=\"/metrics\">metrics</a></p>",
        env!("CARGO_PKG_VERSION")
    );
    for (job, pool) in &view {
        let up = pool.active.iter().filter(|t| t.health.read().up == Some(true)).count();
        let _ = write!(
            body,
            "<h2>{} <small>({up}/{} up, {} dropped)</small></h2><table><thead><tr><th scope=\"col\">Endpoint</th>\
             <th scope=\"col\">State</th><th scope=\"col\">Labels</th><th scope=\"col\">Last scrape</th>\
             <th scope=\"col\">Duration</th><th scope=\"col\">Error</th></tr></thead><tbody>",
            esc(job),
            pool.active.len(),
            pool.dropped.len()
        );
        for t in &pool.active {
            let h = t.health.read().clone();
            let (class, state) = match h.up {
                Some(true) => ("up", "UP"),
                Some(false) => ("down", "DOWN"),
                None => ("", "UNKNOWN"),
            };
            let labels: Vec<String> =
                t.labels.iter().map(|l| format!("<code>{}=\"{}\"</code>", esc(&l.name), esc(&l.value))).collect();
            let last = if h.last_scrape_ms == 0 { "never".to_string() } else { format_rfc3339(h.last_scrape_ms) };
            let _ = write!(
                body,
                "<tr><td><a href=\"{url}\">{url}</a></td><td class=\"{class}\">{state}</td><td>{}</td><td>{last}</td>\
                 <td>{:.3}s</td><td>{}</td></tr>",
                labels.join(" "),
                h.last_duration.as_secs_f64(),
                esc(&h.last_error),
                url = esc(&t.url),
            );
        }
        body.push_str("</tbody></table>");
    }
    if view.is_empty() {
        body.push_str("<p>No scrape jobs configured.</p>");
    }
    body.push_str("</body></html>");
    Html(body)
}
