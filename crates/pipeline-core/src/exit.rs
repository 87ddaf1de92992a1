//! Exit codes: part of shipline's API, defined once here.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: the gate passed, the deploy is verified |
//! | 1 | findings over the gate threshold, a refused approval, a failed or rolled-back deploy |
//! | 2 | usage or configuration error: fix the command line or the config |
//! | 3 | tool or infrastructure error: a scanner crashed, the engine or registry is unreachable |
//!
//! A run that finds problems never exits with the same code as a broken tool.

/// Everything went as asked.
pub const OK: i32 = 0;
/// Findings over threshold, gate failed, approval refused, deploy failed (and rolled back).
pub const FAILED: i32 = 1;
/// Usage or configuration error.
pub const USAGE: i32 = 2;
/// Tool or infrastructure error (scanner, engine, registry, filesystem).
pub const TOOL: i32 = 3;
