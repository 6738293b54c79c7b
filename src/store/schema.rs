//! The one schema both backends share (migrations/postgres and migrations/sqlite create it).

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::types::sql::DbUuid;

    tenants (id) {
        id -> DbUuid,
        slug -> Text,
        display_name -> Text,
        created_at -> BigInt,
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

diesel::joinable!(signing_keys -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, signing_keys);
