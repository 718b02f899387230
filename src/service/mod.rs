//! What the application does, apart from how it is asked: the API handlers and the page
//! handlers both call these, so both take the same checks and make the same changes.

pub mod jobs;
