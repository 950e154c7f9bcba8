//! The Reddit source: an OAuth client for the API ([`client`]) and the Reddit section of a scan
//! ([`section`]), which fetches the history and has it scored.

pub mod client;
pub mod section;
