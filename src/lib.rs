//! account-scanner: find where a username exists (Sherlock) and what its Reddit history says.
//!
//! Layers, top to bottom (imports only point down; `tests/layout.rs` checks it):
//! - faces: [`bot`] (Discord), [`cli`] (terminal), the [`jobs`] they share;
//! - [`scanner`]: runs the [`sources`] for one request, scores text with [`toxicity`];
//! - plumbing: [`net`] (HTTP, limits, retries), [`store`] (report files), [`db`] (history,
//!   settings, audit), [`ops`] (health, logs,
//!   metrics, host facts), [`config`], [`redact`];
//! - [`model`]: what a scan knows; imports nothing of the crate.

pub mod bot;
pub mod cli;
pub mod config;
pub mod db;
pub mod jobs;
pub mod model;
pub mod net;
pub mod ops;
pub mod redact;
pub mod scanner;
pub mod sources;
pub mod store;
pub mod toxicity;
