//! Native security audit of compose stacks and their Traefik setup (work in progress).
