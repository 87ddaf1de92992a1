//! Integration tests of shipline-scanners (one binary, one module per area).

mod audit;
mod common;
mod conformance;
mod fault_matrix;
mod gate;
mod real_tools;
mod snapshots;
