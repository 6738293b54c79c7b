//! A scripted browser over reqwest: a cookie jar shared across replicas (cookies ignore the
//! port, as browsers' do), form posts, no automatic redirects (tests assert every 303).

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::header::{COOKIE, SET_COOKIE};

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The value of the first `<input name="NAME" … value="…">` (attributes in our
    /// templates' order), unescaped.
    pub fn input(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\""))?;
        let rest = &self.body[at..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let v = tag.find("value=\"")? + 7;
        let value = &tag[v..v + tag[v..].find('"')?];
        Some(
            value
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&#x27;", "'")
                .replace("&#x2f;", "/")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    }

    pub fn csrf(&self) -> String {
        self.input("csrf").expect("a csrf field")
    }

    /// The raw `Set-Cookie` header for `name`, if the response set one.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

pub struct Browser {
    client: reqwest::Client,
    jar: Mutex<HashMap<String, String>>,
    pub user_agent: String,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::default(),
            user_agent: "latchkey-tests/1.0 (scripted browser)".into(),
        }
    }

    /// A browser that trusts `cert_pem` (a test server's self-signed certificate).
    pub fn trusting(cert_pem: &str) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
                .build()
                .unwrap(),
            ..Browser::new()
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for raw in headers.get_all(SET_COOKIE) {
            let raw = raw.to_str().unwrap();
            let first = raw.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            let removed = raw.to_ascii_lowercase().contains("max-age=0");
            let mut jar = self.jar.lock().unwrap();
            if removed {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let r = self
            .client
            .get(url)
            .header(COOKIE, self.cookie_header())
            .header("user-agent", &self.user_agent)
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    pub async fn post(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(url, fields, &[]).await
    }

    pub async fn post_with(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(url)
            .header(COOKIE, self.cookie_header())
            .header("user-agent", &self.user_agent)
            .form(fields);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.read(request.send().await.unwrap()).await
    }

    /// POSTs `body` as JSON, as the pages' script does.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(url)
            .header(COOKIE, self.cookie_header())
            .header("user-agent", &self.user_agent)
            .json(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.read(request.send().await.unwrap()).await
    }

    /// Signs in with a password at `issuer` (GET the form, POST it); the POST's answer.
    pub async fn login(&self, issuer: &str, username: &str, password: &str) -> Page {
        let form = self.get(&format!("{issuer}/login")).await;
        assert_eq!(form.status, 200, "{}", form.body);
        self.post(
            &format!("{issuer}/login"),
            &[
                ("csrf", &form.csrf()),
                ("username", username),
                ("password", password),
                ("return_to", ""),
            ],
        )
        .await
    }
}
