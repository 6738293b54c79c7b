//! What an authorization request needs from the person before it can be answered (OpenID
//! Connect Core §3.1.2.1 `prompt`, `max_age`, `id_token_hint`, `acr` as an essential claim;
//! §3.1.2.3–4 authentication and consent). A plain function of the request and the browser's
//! situation, apart from HTTP.

use crate::error::AuthorizationError;
use crate::model::authorization::PendingAuthorization;
use crate::model::session::SessionId;
use crate::oauth::authorization_request::Prompt;
use crate::oidc::claims;

/// The browser's session, as far as the decision goes.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    pub id: SessionId,
    /// The `sub` its tokens carry.
    pub subject: String,
    pub auth_time: i64,
    pub acr: Option<String>,
}

/// Everything beside the request that the decision reads.
#[derive(Debug, Clone)]
pub struct Situation {
    pub now: i64,
    pub session: Option<SessionFacts>,
    /// The `sub` of a verified `id_token_hint`.
    pub hint_subject: Option<String>,
    /// A remembered consent covers the requested scope.
    pub consented: bool,
    /// The client is the tenant's own: no consent asked (unless `prompt=consent`).
    pub first_party: bool,
}

/// What happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Show the sign-in page, then come back.
    SignIn,
    /// `prompt=select_account`: let the person confirm or change the account.
    ChooseAccount,
    /// Ask for consent.
    Consent,
    /// Answer with a code.
    Issue,
    /// Answer with this error (§3.1.2.6).
    Refuse(AuthorizationError, &'static str),
}

/// Whether the person authenticated after `pending` arrived: an `auth_time` not before it,
/// and not the authentication the browser's session had then (a re-authentication keeps the
/// session, with a new `auth_time`). A request handle carried to another browser, whose
/// session is older, does not count as a sign-in.
fn signed_in_since(pending: &PendingAuthorization, s: &SessionFacts) -> bool {
    let as_it_was =
        pending.session_at_start == Some(s.id) && pending.auth_time_at_start == Some(s.auth_time);
    s.auth_time >= pending.created_at && !as_it_was
}

/// Decides the next step of `pending` in `situation`.
pub fn decide(pending: &PendingAuthorization, situation: &Situation) -> Next {
    let request = &pending.request;
    let silent = request.prompt.contains(&Prompt::None);
    let claims = request.claims.as_ref();
    let wanted_acr = claims::wanted_values(claims, "acr").filter(|_| {
        claims::essential(claims, claims::Target::IdToken, "acr")
            || claims::essential(claims, claims::Target::Userinfo, "acr")
    });
    let sign_in = match &situation.session {
        None => true,
        Some(s) => {
            // prompt=login: a sign-in after the request arrived (the session present at the
            // start, as it was authenticated then, does not count).
            (request.prompt.contains(&Prompt::Login) && !signed_in_since(pending, s))
                // max_age: the last authentication is too old.
                || request
                    .max_age
                    .is_some_and(|m| situation.now.saturating_sub(s.auth_time) > i64::try_from(m).unwrap_or(i64::MAX))
        }
    };
    if silent {
        // §3.1.2.1: prompt=none shows nothing; it answers with the reason instead.
        let Some(session) = &situation.session else {
            return Next::Refuse(
                AuthorizationError::LoginRequired,
                "the user is not signed in",
            );
        };
        if sign_in {
            return Next::Refuse(
                AuthorizationError::LoginRequired,
                "the user must sign in again",
            );
        }
        if situation
            .hint_subject
            .as_ref()
            .is_some_and(|h| *h != session.subject)
        {
            return Next::Refuse(
                AuthorizationError::LoginRequired,
                "the user signed in is not the one id_token_hint names",
            );
        }
        if wanted_acr
            .as_ref()
            .is_some_and(|w| !session.acr.as_ref().is_some_and(|a| w.contains(a)))
        {
            return Next::Refuse(
                AuthorizationError::InteractionRequired,
                "the requested authentication context needs the user",
            );
        }
        if !situation.first_party && !situation.consented {
            return Next::Refuse(
                AuthorizationError::ConsentRequired,
                "the user has not consented",
            );
        }
        return Next::Issue;
    }
    let Some(session) = &situation.session else {
        return Next::SignIn;
    };
    if sign_in {
        return Next::SignIn;
    }
    if let Some(hint) = &situation.hint_subject
        && *hint != session.subject
    {
        // The person is asked to sign in as the account the hint names, once; signed in as
        // another after the request arrived, the request fails.
        return if !signed_in_since(pending, session) {
            Next::SignIn
        } else {
            Next::Refuse(
                AuthorizationError::LoginRequired,
                "the user signed in is not the one id_token_hint names",
            )
        };
    }
    // §5.5.1.1: an essential acr that cannot be met is a failed authentication.
    if let Some(wanted) = &wanted_acr
        && !session.acr.as_ref().is_some_and(|a| wanted.contains(a))
    {
        return Next::Refuse(
            AuthorizationError::AccessDenied,
            "the requested authentication context cannot be met",
        );
    }
    if request.prompt.contains(&Prompt::SelectAccount) && !pending.account_chosen {
        return Next::ChooseAccount;
    }
    if request.prompt.contains(&Prompt::Consent) || (!situation.first_party && !situation.consented)
    {
        return Next::Consent;
    }
    Next::Issue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::client::{ClientId, ResponseType};
    use crate::model::redirect_uri::RedirectUri;
    use crate::model::token::Scope;
    use crate::oauth::authorization_request::{AuthorizationRequest, ResponseMode};

    fn pending(
        prompt: Vec<Prompt>,
        max_age: Option<u64>,
        at_start: Option<SessionId>,
    ) -> PendingAuthorization {
        PendingAuthorization {
            request: AuthorizationRequest {
                client_id: ClientId::parse("app").unwrap(),
                redirect_uri: RedirectUri::parse("https://app.example/cb").unwrap(),
                redirect_uri_sent: true,
                response_type: ResponseType::Code,
                response_mode: ResponseMode::Query,
                scope: Scope::parse("openid").unwrap(),
                state: None,
                nonce: None,
                code_challenge: None,
                prompt,
                max_age,
                login_hint: None,
                id_token_hint: None,
                acr_values: vec![],
                ui_locales: vec![],
                resources: vec![],
                claims: None,
            },
            pushed: false,
            in_browser: true,
            created_at: 1000,
            expires_at: 2800,
            session_at_start: at_start,
            // The session present at the start authenticated at 500.
            auth_time_at_start: at_start.map(|_| 500),
            account_chosen: false,
        }
    }

    fn sid(n: u128) -> SessionId {
        SessionId(uuid::Uuid::from_u128(n))
    }

    fn signed_in(id: SessionId, auth_time: i64) -> Situation {
        Situation {
            now: 1000,
            session: Some(SessionFacts {
                id,
                subject: "alice".into(),
                auth_time,
                acr: Some("1".into()),
            }),
            hint_subject: None,
            consented: true,
            first_party: false,
        }
    }

    fn nobody() -> Situation {
        Situation {
            session: None,
            ..signed_in(sid(0), 0)
        }
    }

    #[test]
    fn prompt_none_never_shows_a_page() {
        let p = pending(vec![Prompt::None], None, None);
        assert_eq!(
            decide(&p, &nobody()),
            Next::Refuse(
                AuthorizationError::LoginRequired,
                "the user is not signed in"
            )
        );
        let mut s = signed_in(sid(1), 900);
        s.consented = false;
        assert!(matches!(
            decide(&p, &s),
            Next::Refuse(AuthorizationError::ConsentRequired, _)
        ));
        s.first_party = true;
        assert_eq!(decide(&p, &s), Next::Issue);
        s.hint_subject = Some("bob".into());
        assert!(matches!(
            decide(&p, &s),
            Next::Refuse(AuthorizationError::LoginRequired, _)
        ));
        let old = pending(vec![Prompt::None], Some(60), None);
        assert!(matches!(
            decide(&old, &signed_in(sid(1), 900)),
            Next::Refuse(AuthorizationError::LoginRequired, _)
        ));
        let mut acr = pending(vec![Prompt::None], None, None);
        acr.request.claims =
            Some(serde_json::json!({"id_token": {"acr": {"essential": true, "value": "phr"}}}));
        assert!(matches!(
            decide(&acr, &signed_in(sid(1), 900)),
            Next::Refuse(AuthorizationError::InteractionRequired, _)
        ));
    }

    #[test]
    fn prompt_login_wants_a_sign_in_after_the_request() {
        let p = pending(vec![Prompt::Login], None, Some(sid(1)));
        assert_eq!(decide(&p, &signed_in(sid(1), 500)), Next::SignIn);
        // Signed in again (a new session): done, even within the same second.
        assert_eq!(decide(&p, &signed_in(sid(2), 1000)), Next::Issue);
        // The same person again in the same session (it goes on with a new auth_time): done.
        assert_eq!(decide(&p, &signed_in(sid(1), 1000)), Next::Issue);
        // Another browser's older session (the handle carried over) is no sign-in.
        assert_eq!(decide(&p, &signed_in(sid(9), 900)), Next::SignIn);
        // No session when it arrived: any session is a fresh sign-in.
        let fresh = pending(vec![Prompt::Login], None, None);
        assert_eq!(decide(&fresh, &nobody()), Next::SignIn);
        assert_eq!(decide(&fresh, &signed_in(sid(3), 1000)), Next::Issue);
    }

    #[test]
    fn max_age_counts_from_the_last_authentication() {
        let p = pending(vec![], Some(100), None);
        assert_eq!(decide(&p, &signed_in(sid(1), 900)), Next::Issue);
        assert_eq!(decide(&p, &signed_in(sid(1), 899)), Next::SignIn);
        let zero = pending(vec![], Some(0), None);
        assert_eq!(decide(&zero, &signed_in(sid(1), 999)), Next::SignIn);
    }

    #[test]
    fn consent_and_account_choice() {
        let mut s = signed_in(sid(1), 900);
        s.consented = false;
        assert_eq!(decide(&pending(vec![], None, None), &s), Next::Consent);
        s.first_party = true;
        assert_eq!(decide(&pending(vec![], None, None), &s), Next::Issue);
        assert_eq!(
            decide(&pending(vec![Prompt::Consent], None, None), &s),
            Next::Consent,
            "prompt=consent asks even for first-party clients"
        );
        let mut choose = pending(vec![Prompt::SelectAccount], None, None);
        assert_eq!(decide(&choose, &s), Next::ChooseAccount);
        choose.account_chosen = true;
        assert_eq!(decide(&choose, &s), Next::Issue);
    }

    #[test]
    fn a_hint_for_someone_else_asks_once_then_fails() {
        let p = pending(vec![], None, Some(sid(1)));
        let mut s = signed_in(sid(1), 500);
        s.hint_subject = Some("bob".into());
        assert_eq!(decide(&p, &s), Next::SignIn);
        let mut after = signed_in(sid(2), 1000);
        after.hint_subject = Some("bob".into());
        assert!(matches!(
            decide(&p, &after),
            Next::Refuse(AuthorizationError::LoginRequired, _)
        ));
    }
}
