//! The one schema both backends share (migrations/postgres and migrations/sqlite create it).

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    tenants (id) {
        id -> DbUuid,
        slug -> Text,
        display_name -> Text,
        created_at -> BigInt,
        settings -> DbJson,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    signing_keys (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        kid -> Text,
        alg -> Text,
        state -> Text,
        public_jwk -> DbJson,
        private_jwk -> Binary,
        master_key_id -> Text,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    clients (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        client_id -> Text,
        secret_hash -> Nullable<Binary>,
        secret_sealed -> Nullable<Binary>,
        secret_expires_at -> Nullable<BigInt>,
        metadata -> DbJson,
        policy -> DbJson,
        registration_token_hash -> Nullable<Binary>,
        dynamic -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    initial_access_tokens (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        token_hash -> Binary,
        label -> Text,
        expires_at -> Nullable<BigInt>,
        uses_left -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    access_tokens (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        token_hash -> Binary,
        client_id -> Text,
        claims -> DbJson,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    revoked_tokens (tenant_id, jti) {
        tenant_id -> DbUuid,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    refresh_tokens (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        token_hash -> Binary,
        family_id -> DbUuid,
        client_id -> Text,
        claims -> DbJson,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    refresh_families (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        client_id -> Text,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        rotated_at -> Nullable<BigInt>,
        created_at -> BigInt,
        subject -> Nullable<Text>,
        session_id -> Nullable<DbUuid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    api_keys (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        key_id -> Text,
        key_hash -> Binary,
        owner_kind -> Text,
        owner -> Text,
        label -> Text,
        scope -> Text,
        not_before -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    users (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        username -> Text,
        username_key -> Text,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        email_verified -> Bool,
        profile -> DbJson,
        roles -> DbJson,
        groups -> DbJson,
        password_hash -> Nullable<Text>,
        password_changed_at -> Nullable<BigInt>,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    audit_events (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> DbJson,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    sessions (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        token_hash -> Binary,
        user_id -> DbUuid,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        auth_time -> BigInt,
        amr -> DbJson,
        acr -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    login_events (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        user_id -> DbUuid,
        at -> BigInt,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        method -> Text,
        result -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    passkeys (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        user_id -> DbUuid,
        credential_id -> Binary,
        name -> Text,
        passkey -> DbJson,
        sign_count -> BigInt,
        backup_eligible -> Bool,
        backed_up -> Bool,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::{DbJson, DbUuid};

    outbox (id) {
        id -> DbUuid,
        tenant_id -> DbUuid,
        kind -> Text,
        payload -> DbJson,
        created_at -> BigInt,
        available_at -> BigInt,
        attempts -> Integer,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    user_tokens (token_hash) {
        token_hash -> Binary,
        tenant_id -> DbUuid,
        user_id -> DbUuid,
        purpose -> Text,
        email -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    consents (tenant_id, user_id, client_id) {
        tenant_id -> DbUuid,
        user_id -> DbUuid,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    session_clients (session_id, client_id) {
        session_id -> DbUuid,
        tenant_id -> DbUuid,
        client_id -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(user_tokens -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(signing_keys -> tenants (tenant_id));
diesel::joinable!(clients -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    signing_keys,
    clients,
    initial_access_tokens,
    access_tokens,
    revoked_tokens,
    refresh_tokens,
    refresh_families,
    api_keys,
    users,
    audit_events,
    sessions,
    login_events,
    passkeys,
    outbox,
    user_tokens,
    consents,
    session_clients,
);
