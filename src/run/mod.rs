//! Long-running and self-contained runs on top of the library: the daemon
//! (`schedule`), the simulated demo (`demo`) and the loopback HTTP server both use
//! (`sim`). Nothing below `run` imports from it.

pub mod demo;
pub mod schedule;
pub mod sim;
