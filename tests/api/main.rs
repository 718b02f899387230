//! Integration tests: the real router and worker over HTTP, the real SQLite file, and loopback
//! fakes of every external service. One binary, many modules (linking is slow).

mod api_errors;
mod archive;
mod ask;
mod backup;
mod browser;
mod browser_live;
mod browser_nojs;
mod cluster;
mod compression;
mod database;
mod deployment;
mod durability;
mod fakes;
mod faults;
mod front;
mod helpers;
mod intake;
mod leases;
mod legacy;
mod listing;
mod log_stream;
mod observability;
mod openapi;
mod pages;
mod pipeline;
mod plaud;
mod replicas;
mod s3;
mod security;
mod share;
mod soak;
mod storage;
mod ui;
mod webdriver;
