//! The application: its state ([`state`]) and the HTTP server around it ([`server`]).

mod server;
mod state;

pub use server::{http_server, serve};
pub use state::{AppState, HotCopies, StartupError};
