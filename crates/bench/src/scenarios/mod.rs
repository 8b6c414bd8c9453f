//! The benchmark's scenarios, one file each.

pub(crate) mod ceiling;
pub(crate) mod fanout;
pub(crate) mod redaction;
pub(crate) mod resume;
pub(crate) mod startup;
pub(crate) mod storm;
pub(crate) mod writes;
