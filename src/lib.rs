//! latchkey: an OAuth 2.1 / OpenID Connect authorization server.
//!
//! Layout: `store` (the only diesel user), `cache` (shared short-lived state), `jose` (the only
//! josekit user), `model` (plain types), services (`tenants`, `keys`), HTTP (`routes`, `http`,
//! `error`, `oidc`, `admin`, `ops`), the browser pages (`web`, over `people`), and `app`/`cli`/`config` around them.

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod http;
pub mod jose;
pub mod keys;
pub mod mail;
pub mod model;
pub mod oauth;
pub mod oidc;
pub mod ops;
pub mod people;
pub mod rng;
pub mod routes;
pub mod store;
pub mod tenants;
pub mod urls;
pub mod web;
