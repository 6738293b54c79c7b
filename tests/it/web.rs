//! The browser pages, one file per page as in `src/web/`.

mod account;
mod chromium;
mod login;
mod passkeys;
mod recovery;
