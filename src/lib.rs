//! vigie: cluster discovery, scraping, storage, PromQL, rules and alert routing in one binary.
//!
//! The modules follow the data flow of `DESIGN.md`:
//! discovery → config → scrape → tsdb → promql → api/ui, with [`app`] wiring them for
//! `vigie run`.

pub mod alert;
pub mod api;
pub mod app;
pub mod config;
pub mod discovery;
pub mod metrics;
pub mod model;
pub mod operator;
pub mod promql;
pub mod relabel;
pub mod rules;
pub mod scrape;
pub mod tsdb;
pub mod ui;
