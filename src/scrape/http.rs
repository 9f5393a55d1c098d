//! HTTP client settings of a scrape job: client construction and authorization.

use std::time::Duration;

use crate::config::HttpClientConfig;

/// Builds the client a job's loops share (connection pool, TLS, redirects). Compression
/// is not the client's business: the scrape loop asks for gzip and inflates the page itself
/// in one pass into a buffer it reuses (see `scrape_loop::fetch`).
pub fn client(cfg: &HttpClientConfig) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().pool_max_idle_per_host(4);
    if cfg.follow_redirects == Some(false) {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(tls) = &cfg.tls_config {
        if tls.insecure_skip_verify == Some(true) {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(ca) = &tls.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("reading ca_file {ca}: {e}"))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("parsing ca_file {ca}: {e}"))?;
            b = b.add_root_certificate(cert);
        }
    }
    if let Some(p) = &cfg.proxy_url {
        b = b.proxy(reqwest::Proxy::all(p).map_err(|e| format!("proxy_url {p}: {e}"))?);
    } else {
        b = b.no_proxy();
    }
    b.build().map_err(|e| e.to_string())
}

fn read_secret(inline: &Option<String>, file: &Option<String>) -> Option<String> {
    match (inline, file) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(f)) => std::fs::read_to_string(f).ok().map(|s| s.trim_end_matches(['\n', '\r']).to_string()),
        _ => None,
    }
}

/// Adds basic auth or an `Authorization` header to a request.
pub fn authorize(req: reqwest::RequestBuilder, cfg: &HttpClientConfig) -> reqwest::RequestBuilder {
    if let Some(b) = &cfg.basic_auth {
        let user = read_secret(&b.username, &b.username_file).unwrap_or_default();
        return req.basic_auth(user, read_secret(&b.password, &b.password_file));
    }
    if let Some(a) = &cfg.authorization {
        let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
        if let Some(c) = read_secret(&a.credentials, &a.credentials_file) {
            return req.header("Authorization", format!("{kind} {c}"));
        }
    }
    if let Some(t) = read_secret(&cfg.bearer_token, &cfg.bearer_token_file) {
        return req.header("Authorization", format!("Bearer {t}"));
    }
    req
}

/// An error message in the words users know from Prometheus's target page.
pub fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("Get: context deadline exceeded (timeout {}s)", timeout.as_secs_f64());
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
