//! mapfleet core: the ASL engine, item readers, result writer, Map Run state machine and the
//! storage ports. The crate is pure: every effect (tasks, clock, randomness, storage) goes
//! through a trait in [`ports`], so the same core runs in the CLI, in tests and in Lambda.

pub mod asl;
pub mod engine;
pub mod maprun;
pub mod ports;
pub mod reader;
pub mod storage;
pub mod writer;
