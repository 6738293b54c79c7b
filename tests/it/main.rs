//! The one integration-test binary; its folders mirror `src/`.

#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::field_reassign_with_default,
    reason = "test support code fails loudly by design"
)]

#[macro_use]
mod harness;

mod admin;
mod cache;
mod cli;
mod config;
mod http;
mod keys;
mod oauth;
mod oidc;
mod ops;
mod replicas;
mod store;
mod web;
