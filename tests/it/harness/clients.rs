//! Client fixtures: `app.client("default").scope("a b").create().await`, and requests made as
//! a client (HTTP Basic unless the test says otherwise).

use latchkey::clients::NewClient;
use latchkey::model::TenantSlug;
use latchkey::model::client::{ClientPolicy, MetadataRequest, ValidationRules};
use serde_json::{Map, Value, json};

use super::TestApp;

/// A registered client and the secret it was given.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub tenant: String,
}

pub struct ClientBuilder<'a> {
    app: &'a TestApp,
    tenant: String,
    meta: Map<String, Value>,
    policy: ClientPolicy,
}

impl<'a> ClientBuilder<'a> {
    pub fn meta(mut self, key: &str, value: Value) -> Self {
        self.meta.insert(key.into(), value);
        self
    }

    pub fn grants(self, grants: &[&str]) -> Self {
        self.meta("grant_types", json!(grants))
    }

    pub fn scope(self, scope: &str) -> Self {
        self.meta("scope", json!(scope))
    }

    pub fn auth_method(self, method: &str) -> Self {
        self.meta("token_endpoint_auth_method", json!(method))
    }

    pub fn policy(mut self, change: impl FnOnce(&mut ClientPolicy)) -> Self {
        change(&mut self.policy);
        self
    }

    pub async fn create(self) -> TestClient {
        let request: MetadataRequest =
            serde_json::from_value(Value::Object(self.meta)).expect("metadata");
        let metadata = request
            .validate(ValidationRules {
                allow_http_jwks_uri: true,
            })
            .expect("valid metadata");
        let tenant = self
            .app
            .state
            .tenants()
            .get(&TenantSlug::parse(&self.tenant).expect("slug"))
            .await
            .expect("tenant");
        let (client, issued) = self
            .app
            .state
            .clients()
            .create(
                &tenant,
                NewClient {
                    metadata,
                    policy: self.policy,
                    dynamic: false,
                },
            )
            .await
            .expect("create client");
        TestClient {
            id: client.client_id.to_string(),
            secret: issued.client_secret,
            tenant: self.tenant,
        }
    }
}

impl TestApp {
    /// A confidential client_credentials client with scope `api:read api:write`.
    pub fn client(&self, tenant: &str) -> ClientBuilder<'_> {
        ClientBuilder {
            app: self,
            tenant: tenant.to_owned(),
            meta: Map::new(),
            policy: ClientPolicy::default(),
        }
        .grants(&["client_credentials"])
        .scope("api:read api:write")
    }

    /// An initial access token for registration at tenant `default` (RFC 7591 §3).
    pub async fn initial_access_token(&self, expires_in: Option<i64>, uses: Option<i64>) -> String {
        let tenant = self.default_tenant().await;
        let token = latchkey::rng::Rng::System.token::<32>();
        let now = self.state.clock.now();
        self.state
            .store
            .insert_initial_access_token(
                tenant.id,
                latchkey::crypto::sha256(token.as_bytes()),
                "test",
                expires_in.map(|s| now + s),
                uses,
                now,
            )
            .await
            .unwrap();
        token
    }

    /// POSTs a form to `{issuer}/{endpoint}` as `client` with HTTP Basic.
    pub async fn post_as(
        &self,
        client: &TestClient,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/t/{}/{endpoint}", client.tenant)))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// The token endpoint, as `client`.
    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_as(client, "token", form).await
    }

    /// A client_credentials access token for `client` (asserting success).
    pub async fn access_token(&self, client: &TestClient) -> String {
        let res = self
            .token(client, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(res.status(), 200, "token request failed");
        let body: Value = res.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A refresh token for `client`, exchanged (RFC 8693) from its own client-credentials
    /// token (asserting success).
    pub async fn refresh_token(&self, client: &TestClient) -> String {
        let subject = self.access_token(client).await;
        let res = self
            .token(
                client,
                &[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", subject.as_str()),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                    (
                        "requested_token_type",
                        "urn:ietf:params:oauth:token-type:refresh_token",
                    ),
                ],
            )
            .await;
        assert_eq!(res.status(), 200, "refresh token by exchange");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["token_type"], "N_A");
        assert_eq!(
            body["issued_token_type"],
            "urn:ietf:params:oauth:token-type:refresh_token"
        );
        body["access_token"]
            .as_str()
            .expect("refresh token")
            .to_owned()
    }

    /// Introspects `token` as `client`; returns the JSON response (asserting 200).
    pub async fn introspect(&self, client: &TestClient, token: &str) -> Value {
        let res = self
            .post_as(client, "introspect", &[("token", token)])
            .await;
        assert_eq!(res.status(), 200, "introspection failed");
        assert_eq!(res.headers()["cache-control"], "no-store");
        res.json().await.expect("json")
    }
}

/// Decodes a JWT's header and claims without verifying (tests verify separately).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = engine.decode(parts.next().expect("header")).expect("b64");
    let claims = engine.decode(parts.next().expect("claims")).expect("b64");
    (
        serde_json::from_slice(&header).expect("header json"),
        serde_json::from_slice(&claims).expect("claims json"),
    )
}

/// Asserts an OAuth error response and returns its body. Every 401 carries a challenge (RFC
/// 9110 §15.5.2); an `invalid_client` 400 carries none (RFC 6749 §5.2).
pub async fn oauth_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for {code}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let challenge = res.headers().get("www-authenticate");
    if status == 401 {
        assert!(challenge.is_some(), "a 401 {code} without a challenge");
    }
    if status == 400 && code == "invalid_client" {
        assert!(challenge.is_none(), "a 400 invalid_client with a challenge");
    }
    let body: Value = res.json().await.expect("error json");
    assert_eq!(body["error"], code, "{body}");
    body
}
