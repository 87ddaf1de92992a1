//! shipline-scanners (work in progress)
