//! shipline-envfile (work in progress)
