//! account-scanner: find where a username exists (Sherlock) and what its Reddit history says.
//!
//! One [`scanner::Scanner`] serves every front end: the CLI ([`cli`]) and the Discord bot ([`bot`]).

pub mod bot;
pub mod cli;
pub mod config;
pub mod health;
pub mod host;
pub mod redact;
pub mod report;
pub mod scanner;
pub mod telemetry;
