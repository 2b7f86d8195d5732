//! Who is calling, and may they: JWT access tokens (HS256) checked at the gateway, so the
//! services behind it never see an unauthenticated request.
//!
//! A request carries `Authorization: Bearer <token>`. The token must be signed with HS256 and
//! the gateway's secret, name the gateway's audience in `aud`, carry `exp` (and `sub`, the
//! client the rate limit counts against) and a `roles` array. [`Authenticator::authenticate`]
//! answers with the [`Principal`] or an [`AuthError`] whose response is
//! - 401 with `WWW-Authenticate: Bearer error="invalid_token"` (also when no token came, one
//!   challenge for every case) and `{"error":"unauthorized","message":...}` for a missing, malformed, expired,
//!   badly signed or wrongly addressed token;
//! - 403 `{"error":"forbidden","message":...}` when the token is good but lacks the role
//!   ([`Principal::require`]).
//!
//! Expiry is judged with a leeway of [`EXPIRY_LEEWAY_SECONDS`] (2 s): enough for clocks of
//! neighbouring hosts, small enough that an expired token is refused promptly. The token itself
//! is never logged; messages say what was wrong, never what was sent.
//!
//! ```
//! use faultline_gateway::auth::{mint_token, Authenticator};
//! use std::time::Duration;
//! let token = mint_token("s3cr3t", "client-1", &["orders:read"], "faultline", Duration::from_secs(60));
//! let auth = Authenticator::new("s3cr3t", "faultline");
//! let principal = auth.verify(&token).unwrap();
//! assert_eq!(principal.subject, "client-1");
//! assert!(principal.require("orders:read").is_ok());
//! assert!(principal.require("orders:write").is_err());
//! ```

use std::time::Duration;

use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Leeway, in seconds, when judging `exp`.
pub const EXPIRY_LEEWAY_SECONDS: u64 = 2;

/// The claims the gateway reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub aud: String,
    /// Seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: the client the rate limit counts.
    pub subject: String,
    pub roles: Vec<String>,
}

impl Principal {
    /// `Ok` when the caller holds `role`, else a 403.
    pub fn require(&self, role: &str) -> Result<(), AuthError> {
        if self.roles.iter().any(|held| held == role) {
            Ok(())
        } else {
            Err(AuthError::MissingRole(role.to_string()))
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token in the Authorization header")]
    MissingToken,
    /// The token is malformed, expired, badly signed or for another audience; says which.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("the token lacks role `{0}`")]
    MissingRole(String),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::MissingRole(_) => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            Self::MissingToken | Self::InvalidToken(_) => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "unauthorized", "message": message})),
                )
                    .into_response();
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                response
            }
            Self::MissingRole(_) => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "forbidden", "message": message})),
            )
                .into_response(),
        }
    }
}

/// Verifies tokens with the gateway's secret and audience.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(secret: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = EXPIRY_LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The principal of the request's bearer token.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = headers
            .get(AUTHORIZATION)
            .ok_or(AuthError::MissingToken)?
            .to_str()
            .map_err(|_| AuthError::InvalidToken("the Authorization header is not text".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                AuthError::InvalidToken("expected `Authorization: Bearer <token>`".into())
            })?;
        self.verify(token)
    }

    /// The principal of `token`.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| AuthError::InvalidToken(describe(error.kind()).to_string()))?;
        Ok(Principal {
            subject: data.claims.sub,
            roles: data.claims.roles,
        })
    }
}

fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::InvalidSignature => "the signature does not match",
        ErrorKind::InvalidAudience => "the token is for another audience",
        ErrorKind::InvalidAlgorithm => "the token is not signed with HS256",
        ErrorKind::MissingRequiredClaim(_) => "a required claim (exp, aud, sub) is missing",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        _ => "the token is malformed",
    }
}

/// A token signed with `secret` for `subject` holding `roles`, addressed to `audience`, valid
/// for `ttl` from now. For tests and the harness's workload (clients get tokens elsewhere).
pub fn mint_token(
    secret: &str,
    subject: &str,
    roles: &[&str],
    audience: &str,
    ttl: Duration,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: subject.to_string(),
        aud: audience.to_string(),
        exp: now + ttl.as_secs(),
        roles: roles.iter().map(|role| role.to_string()).collect(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing with an HMAC key cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_expired_beyond_the_leeway_is_refused_and_one_within_it_accepted() {
        let auth = Authenticator::new("k", "faultline");
        let now = jsonwebtoken::get_current_timestamp();
        let sign = |exp: u64| {
            let claims = Claims {
                sub: "c".into(),
                aud: "faultline".into(),
                exp,
                roles: vec![],
            };
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k"))
                .unwrap()
        };
        assert_eq!(
            auth.verify(&sign(now - 30)),
            Err(AuthError::InvalidToken("the token has expired".into()))
        );
        assert!(auth.verify(&sign(now + 30)).is_ok());
    }
}
