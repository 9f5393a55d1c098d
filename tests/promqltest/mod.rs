//! Reading Prometheus's PromQL test scripts for the conformance test.

pub mod script;
