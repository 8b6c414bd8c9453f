//! The HTTP API driven in-process (`tower::ServiceExt::oneshot`) over a real
//! SQLite store: response shapes, every kind of bad input, and authentication.

mod auth;
mod common;
mod limits;
mod malformed;
mod operations;
mod resources;
mod web_app;
