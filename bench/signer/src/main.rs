//! The ceiling for bench/run.sh: `POST /token` answers like a client_credentials token endpoint
//! but does nothing except sign an RFC 9068 access token (ES256, `typ: at+jwt`, `kid`) with the
//! shared key. No client lookup, no authentication, no storage.
//!
//!     latchkey-bench-signer PRIVATE_JWK_FILE BIND_ADDR ISSUER

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsHeader, JwsSigner};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value, json};

const TTL_SECS: u64 = 300;

struct Signer {
    issuer: String,
    kid: String,
    signer: Box<dyn JwsSigner>,
}

async fn token(state: web::Data<Arc<Signer>>, _form: web::Bytes) -> HttpResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims: Map<String, Value> = match json!({
        "iss": state.issuer,
        "sub": "bench-jwt",
        "aud": state.issuer,
        "exp": now + TTL_SECS,
        "iat": now,
        "jti": URL_SAFE_NO_PAD.encode(josekit::util::random_bytes(16)),
        "client_id": "bench-jwt",
        "scope": "api:read",
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(state.kid.as_str());
    let signed = JwtPayload::from_map(claims)
        .and_then(|payload| jwt::encode_with_signer(&payload, &header, state.signer.as_ref()));
    match signed {
        Ok(access_token) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TTL_SECS,
            })),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, jwk_path, bind, issuer] = args.as_slice() else {
        return Err("usage: latchkey-bench-signer PRIVATE_JWK_FILE BIND_ADDR ISSUER".into());
    };
    let jwk = Jwk::from_bytes(std::fs::read(jwk_path)?)?;
    let kid = jwk.key_id().ok_or("the private JWK has no kid")?.to_owned();
    let state = Arc::new(Signer {
        issuer: issuer.clone(),
        kid,
        signer: Box::new(ES256.signer_from_jwk(&jwk)?),
    });
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(Arc::clone(&state)))
                .route("/token", web::post().to(token))
        })
        .workers(workers)
        .bind(bind.as_str())?
        .run(),
    )?;
    Ok(())
}
