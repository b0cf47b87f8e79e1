//! Integration tests, one binary: each module covers one area end to end.
//! Servers are real HTTP servers on 127.0.0.1 (random port); nothing here touches
//! the internet.

mod common;
mod names;
mod pipeline;
