//! What operators see, recorded from anywhere below the faces: logs and metrics
//! ([`telemetry`]) and facts about the host ([`host`]: free space, memory limit).
//! The bot's health endpoint that serves them is `bot::health`.

pub mod host;
pub mod telemetry;
