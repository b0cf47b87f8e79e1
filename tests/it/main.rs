//! Integration tests, one binary: each module covers one area end to end.
//! Servers are real HTTP servers on 127.0.0.1 (random port); nothing here touches
//! the internet.

mod alerts;
mod cli;
mod common;
mod default_feeds;
mod engines;
mod faults;
mod feeds_china;
mod feeds_cloud;
mod feeds_market;
mod golden;
mod history;
mod ingest_phases;
mod methodology;
mod names;
mod peers;
mod pipeline;
mod props;
mod raw;
mod real_data;
mod render;
mod rollups;
mod s3;
mod schedule;
