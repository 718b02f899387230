//! Integration tests: the real router and worker over HTTP, the real SQLite file, and loopback
//! fakes of every external service. One binary, many modules (linking is slow).

mod api_errors;
mod backup;
mod browser;
mod durability;
mod fakes;
mod front;
mod helpers;
mod legacy;
mod log_stream;
mod pages;
mod pipeline;
mod plaud;
mod webdriver;
