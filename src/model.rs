//! Plain domain types: no I/O, no database rows.

pub mod api_key;
pub mod authorization;
pub mod claims;
pub mod client;
pub mod key;
pub mod outbox;
pub mod passkey;
pub mod redirect_uri;
pub mod session;
pub mod tenant;
pub mod token;
pub mod user;

pub use key::{KeyState, NewSigningKey, SealedSigningKey, SigningAlg, SigningKey};
pub use tenant::{
    Branding, MIN_DYNAMIC_CLIENT_TTL_SECS, RegistrationMode, Tenant, TenantSettings, TenantSlug,
};

pub use crate::store::TenantId;

/// Declares an enum whose variants each have one wire name, written once: `as_str`, `FromStr`,
/// `Display`, `Serialize` and `Deserialize` all derive from it.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!("unknown {} '{}'", stringify!($name), s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use wire_enum;
