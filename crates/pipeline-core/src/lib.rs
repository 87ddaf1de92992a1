//! shipline-core
