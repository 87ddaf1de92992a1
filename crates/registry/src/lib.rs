//! shipline-registry (work in progress)
