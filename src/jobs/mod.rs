//! What the faces share: the scan job (checks, cooldown, queue, scan, save, post, audit) and
//! its parts. No Discord type appears here; the bot plugs in through [`scan::Replies`].

pub mod audit;
pub mod cooldown;
pub mod history;
pub mod joins;
pub mod queue;
pub mod scan;
pub mod settings;
pub mod shared;
pub mod shutdown;
pub mod worker;
