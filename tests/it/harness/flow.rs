//! The authorization code flow as a browser and a relying party go through it: a client
//! registered for it, PKCE, the authorization URL, the pages in between (sign-in, consent),
//! and the callback's parameters.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::Digest;

use super::TestApp;
use super::browser::{Browser, Page};
use super::clients::{ClientBuilder, TestClient};

pub const PASSWORD: &str = "correct horse battery staple";
pub const REDIRECT: &str = "http://127.0.0.1/cb";

/// A PKCE pair (RFC 7636 §4.1–4.2, S256).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = latchkey::rng::Rng::System.token::<32>();
    let challenge = latchkey::crypto::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

impl TestApp {
    /// A confidential web client for the code flow, with refresh, redirecting to
    /// [`REDIRECT`], registered with minimal metadata like relying-party libraries send.
    pub fn rp(&self, tenant: &str) -> ClientBuilder<'_> {
        self.client(tenant)
            .grants(&["authorization_code", "refresh_token"])
            .meta("redirect_uris", json!([REDIRECT]))
            .meta("client_name", json!("Example App"))
            .scope("openid profile email address phone offline_access")
    }
}

/// `{issuer}/authorize?…` with `response_type=code`, the client, the redirect URI, a
/// `state` and a `nonce`, then `extra` (which may repeat or override nothing of those).
pub fn authorize_url(issuer: &str, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", REDIRECT);
        if !extra.iter().any(|(k, _)| *k == "scope") {
            q.append_pair("scope", "openid profile email");
        }
        if !extra.iter().any(|(k, _)| *k == "state") {
            q.append_pair("state", "st-1");
        }
        if !extra.iter().any(|(k, _)| *k == "nonce") {
            q.append_pair("nonce", "n-1");
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// [`authorize_url`] with the S256 challenge of `p`, then `extra`.
pub fn pkce_url(issuer: &str, client: &TestClient, p: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut all = vec![
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    all.extend_from_slice(extra);
    authorize_url(issuer, client, &all)
}

/// Posts the sign-in form of `page` to `action` as `username`, keeping its `return_to`.
pub async fn submit_login(browser: &Browser, action: &str, page: &Page, username: &str) -> Page {
    browser
        .post(
            action,
            &[
                ("csrf", &page.csrf()),
                ("username", username),
                ("password", PASSWORD),
                (
                    "return_to",
                    &page.input("return_to").expect("a return_to field"),
                ),
            ],
        )
        .await
}

/// The parameters of a redirect to the client (query, or fragment), asserting it is a 303
/// (RFC 9700 §4.12) to the redirect URI.
pub fn callback(page: &Page) -> HashMap<String, String> {
    assert_eq!(page.status, 303, "a redirect to the client: {}", page.body);
    let location = page.location();
    assert!(location.starts_with(REDIRECT), "to the client: {location}");
    let url = url::Url::parse(location).unwrap();
    let raw = url
        .fragment()
        .map_or_else(|| url.query().unwrap_or("").to_owned(), str::to_owned);
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

/// A same-origin path or absolute URL of the server, made absolute.
pub fn absolute(app: &TestApp, location: &str) -> String {
    if location.starts_with('/') {
        app.url(location)
    } else {
        location.to_owned()
    }
}

/// Follows `page` through the server's own pages as a person would: signing in as
/// `username` when asked, allowing consent when asked, until a redirect leaves the server
/// (returned) or a page asks for something else (returned).
pub async fn follow(app: &TestApp, browser: &Browser, mut page: Page, username: &str) -> Page {
    for _ in 0..8 {
        if page.status == 303 {
            let location = page.location().to_owned();
            if !location.starts_with('/') && !location.starts_with(&app.base) {
                return page;
            }
            page = browser.get(&absolute(app, &location)).await;
            continue;
        }
        if page.status != 200 {
            return page;
        }
        if page.body.contains(r#"name="password""#) && page.input("return_to").is_some() {
            let action = format!("{}/login", action_base(&page));
            page = submit_login(browser, &action, &page, username).await;
            continue;
        }
        if page.body.contains(r#"name="decision""#) {
            page = consent(browser, &page, "allow").await;
            continue;
        }
        return page;
    }
    panic!("the flow did not settle: {}", page.body);
}

/// The issuer the page's form posts under.
fn action_base(page: &Page) -> String {
    let action = form_action(page);
    action.rsplit_once('/').unwrap().0.to_owned()
}

/// The `action` of the page's first form, unescaped.
pub fn form_action(page: &Page) -> String {
    let at = page.body.find(r#"action=""#).expect("a form") + 8;
    page.body[at..at + page.body[at..].find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Answers the consent page: `allow` or `deny`.
pub async fn consent(browser: &Browser, page: &Page, decision: &str) -> Page {
    browser
        .post(
            &form_action(page),
            &[
                ("csrf", &page.csrf()),
                ("id", &page.input("id").expect("the request handle")),
                ("decision", decision),
            ],
        )
        .await
}

/// A whole flow for `username` from `url` to the client's callback parameters.
pub async fn code_for(
    app: &TestApp,
    browser: &Browser,
    url: &str,
    username: &str,
) -> HashMap<String, String> {
    let start = browser.get(url).await;
    let end = follow(app, browser, start, username).await;
    callback(&end)
}

/// Redeems `code` at the token endpoint as `client` (with `verifier` when given).
pub async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    app.token(client, &form).await
}

/// Redeems and asserts success: the token response.
pub async fn tokens(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Value {
    let res = redeem(app, client, code, Some(verifier)).await;
    assert_eq!(res.status(), 200, "redeem");
    res.json().await.unwrap()
}

/// Verifies a JWT signed by `tenant` against its published JWKS; its header and claims.
pub async fn verify_signed(app: &TestApp, tenant: &str, token: &str) -> (Value, Value) {
    use josekit::jws::{ES256, EdDSA, RS256};
    let (header, claims) = super::clients::jwt_parts(token);
    let jwks = app.get_json(&format!("/t/{tenant}/jwks")).await;
    let kid = header["kid"].as_str().expect("kid");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the signing key is published");
    let jwk = josekit::jwk::Jwk::from_map(key.as_object().unwrap().clone()).unwrap();
    let verified = match header["alg"].as_str().unwrap() {
        "RS256" => {
            josekit::jwt::decode_with_verifier(token, &RS256.verifier_from_jwk(&jwk).unwrap())
        }
        "ES256" => {
            josekit::jwt::decode_with_verifier(token, &ES256.verifier_from_jwk(&jwk).unwrap())
        }
        "EdDSA" => {
            josekit::jwt::decode_with_verifier(token, &EdDSA.verifier_from_jwk(&jwk).unwrap())
        }
        other => panic!("unexpected alg {other}"),
    };
    verified.expect("the signature verifies");
    (header, claims)
}

/// OIDC Core §3.1.3.6 `at_hash` for RS256/ES256: the left half of SHA-256, base64url.
pub fn at_hash_sha256(token: &str) -> String {
    let digest = sha2::Sha256::digest(token.as_bytes());
    latchkey::crypto::b64url(&digest[..16])
}
