//! The services, each built from the pieces of the state it works with. Services never see
//! the state: a handler, command or task asks the state for the service it needs
//! (`state.clients().find(…)`), and the service holds references to its store, its own hot
//! cache, the clock, the randomness, its settings and the invalidator, and nothing else.

use super::AppState;
use crate::clients::Clients;
use crate::keys::Keys;
use crate::oauth::access_token::AccessTokens;
use crate::oauth::api_keys::ApiKeys;
use crate::oauth::authorize::Authorizations;
use crate::oauth::client_auth::ClientAuth;
use crate::oauth::grants::refresh_token::RefreshTokens;
use crate::oauth::request_object::RequestObjects;
use crate::oidc::id_token::IdTokens;
use crate::people::gate::PasswordGate;
use crate::people::links::Links;
use crate::people::passkeys::Passkeys;
use crate::people::sessions::Sessions;
use crate::people::throttle::Throttle;
use crate::people::users::Users;
use crate::tenants::Tenants;

impl AppState {
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            store: &self.store,
            hot: &self.hot.keys,
            master_key: &self.master_key,
            settings: &self.settings.keys,
            hot_ttl_secs: self.settings.cache.hot_ttl_secs,
            clock: &self.clock,
            invalidator: &self.invalidator,
        }
    }

    pub fn tenants(&self) -> Tenants<'_> {
        Tenants {
            store: &self.store,
            hot: &self.hot.tenants,
            keys: self.keys(),
            settings: &self.settings,
            clock: &self.clock,
            invalidator: &self.invalidator,
        }
    }

    pub fn clients(&self) -> Clients<'_> {
        Clients {
            store: &self.store,
            hot: &self.hot.clients,
            master_key: &self.master_key,
            settings: &self.settings.oauth,
            clock: &self.clock,
            rng: &self.rng,
            invalidator: &self.invalidator,
        }
    }

    pub fn client_auth(&self) -> ClientAuth<'_> {
        ClientAuth {
            clients: self.clients(),
            jwks: &self.hot.jwks,
            cache: &self.cache,
            http: &self.http,
            settings: &self.settings,
            clock: &self.clock,
        }
    }

    pub fn access_tokens(&self) -> AccessTokens<'_> {
        AccessTokens {
            store: &self.store,
            hot: &self.hot.tokens,
            keys: self.keys(),
            clients: self.clients(),
            settings: &self.settings,
            clock: &self.clock,
            rng: &self.rng,
            invalidator: &self.invalidator,
        }
    }

    pub fn refresh_tokens(&self) -> RefreshTokens<'_> {
        RefreshTokens {
            store: &self.store,
            cache: &self.cache,
            access: self.access_tokens(),
            id_tokens: self.id_tokens(),
            settings: &self.settings,
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    pub fn users(&self) -> Users<'_> {
        Users {
            store: &self.store,
            passwords: &self.passwords,
            password_settings: &self.settings.passwords,
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    pub fn sessions(&self) -> Sessions<'_> {
        Sessions {
            store: &self.store,
            settings: &self.settings.sessions,
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    pub fn links(&self) -> Links<'_> {
        Links {
            store: &self.store,
            cache: &self.cache,
            settings: &self.settings,
            passwords: &self.passwords,
            password_settings: &self.settings.passwords,
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    pub fn passkeys(&self) -> Passkeys<'_> {
        Passkeys {
            store: &self.store,
            cache: &self.cache,
            settings: &self.settings,
            clock: &self.clock,
            rng: &self.rng,
            sessions: self.sessions(),
            users: self.users(),
        }
    }

    pub fn throttle(&self) -> Throttle<'_> {
        Throttle {
            cache: &self.cache,
            settings: &self.settings.passwords,
        }
    }

    pub fn password_gate(&self) -> PasswordGate<'_> {
        PasswordGate {
            store: &self.store,
            passwords: &self.passwords,
            throttle: self.throttle(),
            sessions: self.sessions(),
            rng: &self.rng,
        }
    }

    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys {
            store: &self.store,
            clients: self.clients(),
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    pub fn id_tokens(&self) -> IdTokens<'_> {
        IdTokens {
            keys: self.keys(),
            settings: &self.settings,
            clock: &self.clock,
        }
    }

    pub fn authorizations(&self) -> Authorizations<'_> {
        Authorizations {
            store: &self.store,
            cache: &self.cache,
            id_tokens: self.id_tokens(),
            settings: &self.settings,
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    pub fn request_objects(&self) -> RequestObjects<'_> {
        RequestObjects {
            client_auth: self.client_auth(),
            settings: &self.settings,
            clock: &self.clock,
        }
    }
}
