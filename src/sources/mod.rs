//! Where a scan's findings come from, one folder per source; each ends in its section of the
//! [`crate::model::ScanReport`].

pub mod reddit;
pub mod sherlock;
