//! People (DESIGN §4): users, their passwords and browser sessions. The user service owns the
//! rules for what a user record may hold; passwords are hashed on a bounded pool and their
//! guessing throttled through the shared cache.

pub mod gate;
pub mod links;
pub mod passkeys;
pub mod passwords;
pub mod sessions;
pub mod throttle;
pub mod users;
