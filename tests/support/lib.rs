//! Support for mapfleet's integration tests: the recorded-case loader, the matcher, and a
//! runner that executes a case through the engine on a virtual clock.

pub mod cases;
pub mod matcher;
