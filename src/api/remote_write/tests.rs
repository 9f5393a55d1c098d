use bytes::Bytes;
use prost::Message;

use super::*;
use crate::api::prompb::{Label, Sample};
use crate::tsdb::{Matcher, Querier};

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: Bytes::copy_from_slice(n.as_bytes()),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn compressed(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap()
}

#[test]
fn headers_follow_prometheus() {
    assert_eq!(check_headers(None, None), Ok(()));
    assert_eq!(check_headers(Some("application/x-protobuf"), Some("snappy")), Ok(()));
    assert_eq!(check_headers(Some("application/x-protobuf;proto=prometheus.WriteRequest"), None), Ok(()));
    assert!(matches!(check_headers(Some("application/json"), None), Err(WriteError::ContentType(_))));
    let v2 = check_headers(Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"), None);
    assert_eq!(v2.unwrap_err().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let gz = check_headers(None, Some("gzip")).unwrap_err();
    assert_eq!(gz.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[test]
fn bad_bodies_are_400_with_the_reason() {
    let e = decode(b"definitely not snappy").unwrap_err();
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    // Valid snappy around a truncated protobuf.
    let mut pb =
        WriteRequest { timeseries: vec![series(&[("__name__", "x")], &[(1, 1.0)])], metadata: vec![] }.encode_to_vec();
    pb.truncate(pb.len() - 3);
    let e = decode(&snap::raw::Encoder::new().compress_vec(&pb).unwrap()).unwrap_err();
    assert!(matches!(e, WriteError::Protobuf(_)), "{e}");
}

#[test]
fn valid_series_are_stored_and_invalid_ones_skipped() {
    let head = Head::new();
    let req = WriteRequest {
        timeseries: vec![
            // Unsorted labels are fine; empty values are dropped.
            series(&[("job", "a"), ("__name__", "up"), ("zone", "")], &[(1000, 1.0), (2000, 0.0)]),
            series(&[("job", "a")], &[(1000, 1.0)]),
            series(&[("__name__", "x"), ("a", "1"), ("a", "2")], &[(1000, 1.0)]),
            series(&[("__name__", "y")], &[(now_ms() + 3_600_000, 1.0)]),
        ],
        metadata: vec![],
    };
    let req = decode(&compressed(&req)).unwrap();
    let r = ingest(&head, &req, now_ms());
    assert_eq!((r.series, r.appended, r.invalid_series, r.too_new), (2, 2, 2, 1));
    assert_eq!(r.first_invalid.as_deref(), Some("series has no __name__ label"));
    let got = head.select(&[Matcher::equal("__name__", "up")], 0, 5000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, Labels::from_pairs([("__name__", "up"), ("job", "a")]));
    assert_eq!(got[0].points.len(), 2);
}

#[test]
fn a_resent_batch_is_a_no_op_and_older_samples_are_counted() {
    let head = Head::new();
    let req =
        WriteRequest { timeseries: vec![series(&[("__name__", "x")], &[(1000, 1.0), (2000, 2.0)])], metadata: vec![] };
    assert_eq!(ingest(&head, &req, now_ms()).appended, 2);
    let again = ingest(&head, &req, now_ms());
    assert_eq!((again.appended, again.rejected_samples()), (0, 0));
    let old =
        WriteRequest { timeseries: vec![series(&[("__name__", "x")], &[(1500, 7.0), (3000, 3.0)])], metadata: vec![] };
    let r = ingest(&head, &old, now_ms());
    assert_eq!((r.appended, r.out_of_order), (1, 1));
}

use crate::model::Labels;
