//! People (DESIGN §4): users and their passwords. The user service owns the rules for what a
//! user record may hold; passwords are hashed on a bounded pool.

pub mod passwords;
pub mod users;
