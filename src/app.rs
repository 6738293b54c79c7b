//! The application: its state ([`state`]: the pieces every service draws on, naming no
//! feature), the features' hot copies gathered in one place ([`hot`]), each service built
//! from the pieces it uses ([`services`]), and the HTTP server and start-up around them
//! ([`server`], the composition root).

mod hot;
mod server;
mod services;
mod state;

pub use hot::HotCopies;
pub use server::{http_server, serve};
pub use state::{AppState, StartupError};
