//! The one integration-test binary; its folders mirror `src/`.

#[macro_use]
mod harness;

mod admin;
mod cache;
mod cli;
mod config;
mod http;
mod keys;
mod oidc;
mod ops;
mod replicas;
mod store;
