//! The POST every HTTP integration makes, with Alertmanager's retry rule: 2xx is success,
//! 5xx, 429 and transport errors are worth another attempt, anything else is final.

use std::time::Duration;

use super::NotifyError;
use crate::config::HttpClientConfig;

pub struct Request<'a> {
    pub integration: &'static str,
    pub url: &'a str,
    pub content_type: &'a str,
    pub body: String,
    pub headers: Vec<(&'a str, String)>,
    pub http: &'a HttpClientConfig,
    pub timeout: Option<Duration>,
}

/// Sends the request; on success returns the response body (some APIs answer 200 with an
/// error inside).
pub async fn post(client: &reqwest::Client, r: Request<'_>) -> Result<String, NotifyError> {
    let mut req = client
        .post(r.url)
        .header("Content-Type", r.content_type)
        .header("User-Agent", concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .body(r.body);
    for (k, v) in r.headers {
        req = req.header(k, v);
    }
    if let Some(t) = r.timeout {
        req = req.timeout(t);
    }
    req = crate::scrape::http::authorize(req, r.http);
    let resp = req
        .send()
        .await
        .map_err(|e| NotifyError { message: format!("{}: {}", r.integration, e.without_url()), retry: true })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let short: String = text.chars().take(256).collect();
    Err(NotifyError {
        message: format!("{}: unexpected status code {}: {}", r.integration, status.as_u16(), short.trim()),
        retry: status.is_server_error() || status.as_u16() == 429,
    })
}
