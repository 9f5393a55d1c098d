//! Request parameters from the query string and, for POST, the form body (Prometheus
//! accepts both, and clients such as promtool POST).

use axum::http::{HeaderMap, Method, Uri, header};

use super::response::ApiError;
use super::time::{parse_duration, parse_time};

pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> =
            uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if *method == Method::POST && is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(s) => parse_time(s).map_err(|e| ApiError::BadData(format!("invalid parameter {name:?}: {e}"))),
        }
    }

    pub fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(s) => {
                parse_duration(s).map(Some).map_err(|e| ApiError::BadData(format!("invalid parameter {name:?}: {e}")))
            }
        }
    }
}
