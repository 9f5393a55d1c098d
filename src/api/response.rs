//! The Prometheus API envelope: `{"status":"success","data":…}` or
//! `{"status":"error","errorType":…,"error":…}` with the matching HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::promql::QueryError;

pub fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

#[derive(Debug)]
pub enum ApiError {
    BadData(String),
    Execution(String),
    Timeout(String),
    Internal(String),
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Parse(m) => ApiError::BadData(m),
            QueryError::Execution(m) => ApiError::Execution(m),
            e @ QueryError::TooManySamples(_) => ApiError::Execution(e.to_string()),
            e @ QueryError::Timeout(_) => ApiError::Timeout(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, kind, msg) = match self {
            ApiError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            ApiError::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            ApiError::Timeout(m) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        };
        (code, axum::Json(json!({"status": "error", "errorType": kind, "error": msg}))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_limits_map_to_prometheus_statuses() {
        let timeout = ApiError::from(QueryError::Timeout("query execution")).into_response();
        assert_eq!(timeout.status(), StatusCode::SERVICE_UNAVAILABLE);
        let samples = ApiError::from(QueryError::TooManySamples("query execution")).into_response();
        assert_eq!(samples.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let parse = ApiError::from(QueryError::Parse("parse error".into())).into_response();
        assert_eq!(parse.status(), StatusCode::BAD_REQUEST);
    }
}
