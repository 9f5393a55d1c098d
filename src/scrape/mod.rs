//! Scraping: turns discovered targets into samples in storage.
//!
//! [`manager`] keeps one loop per target ([`scrape_loop`]); each scrape fetches a page
//! ([`http`]), parses it ([`parse`]) and appends it ([`append`]) with the target's labels
//! ([`target`]), metric relabeling, limits and staleness handling.

pub mod append;
pub mod http;
pub mod manager;
pub mod parse;
pub mod scrape_loop;
pub mod target;

pub use manager::{PoolView, ScrapeManager, TargetsView};
pub use target::{DroppedTarget, Target, TargetHealth};
