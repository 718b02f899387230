//! The JSON API of contract §4: its handlers, the request types they take and the job's JSON
//! shape they answer. The pages reuse the request types, the JSON view and the link check.

pub mod archive;
pub mod ask;
pub(crate) mod extract;
pub(crate) mod intake;
pub(crate) mod jobs;
pub(crate) mod link;
pub(crate) mod logs;
pub mod openapi;
pub(crate) mod requests;
pub mod view;
