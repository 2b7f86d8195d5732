//! The one error type of the Toxiproxy client.

use reqwest::{Method, StatusCode};

/// Everything that can go wrong talking to Toxiproxy.
///
/// Every failure is one of these; the client never panics and never turns an HTTP error
/// status into a success. The messages name the request and what the server said.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToxiproxyError {
    /// The base URL given to the client cannot address a Toxiproxy server.
    #[error(
        "invalid Toxiproxy base URL {url:?}: {reason} (expected e.g. \"http://127.0.0.1:8474\")"
    )]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The HTTP client could not be built.
    #[error("could not build the HTTP client for Toxiproxy")]
    Client(#[source] reqwest::Error),

    /// The request did not get an answer: connection refused or reset, timeout, ...
    #[error(
        "{method} {url}: no answer from Toxiproxy (is it running and reachable at that address?)"
    )]
    Transport {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// What failed underneath.
        #[source]
        source: reqwest::Error,
    },

    /// Toxiproxy answered with an error status (404 unknown proxy or toxic, 409 already
    /// exists, 400 bad request, 500 e.g. listen address in use, ...).
    #[error("{method} {url}: Toxiproxy answered {status}: {body}")]
    Status {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status it answered.
        status: StatusCode,
        /// The body it sent, trimmed; Toxiproxy sends `{"error":"...","status":N}`.
        body: String,
    },

    /// Toxiproxy answered with a success status but a body this client cannot read.
    #[error("{method} {url}: could not decode Toxiproxy's answer {body:?}")]
    Decode {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The body it sent.
        body: String,
        /// Why it could not be decoded.
        #[source]
        source: serde_json::Error,
    },

    /// A request body could not be encoded as JSON.
    #[error("{method} {url}: could not encode the request body")]
    Encode {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// Why it could not be encoded.
        #[source]
        source: serde_json::Error,
    },

    /// A toxicity outside `0.0..=1.0` (or NaN); rejected before any request is sent.
    #[error("toxicity must be within 0.0..=1.0, got {0}")]
    InvalidToxicity(f32),

    /// An update sent attributes of one toxic kind to a toxic of another kind. Toxiproxy
    /// ignores such attributes (it applies the toxicity only), so this is reported rather
    /// than passed off as a success.
    #[error(
        "toxic {toxic:?} on proxy {proxy:?} is a {actual} toxic, but the update was for a {sent} \
         toxic; its attributes were not changed (remove it and add a new one to change its type)"
    )]
    KindMismatch {
        /// The proxy's name.
        proxy: String,
        /// The toxic's name.
        toxic: String,
        /// The type of the attributes sent.
        sent: String,
        /// The toxic's actual type.
        actual: String,
    },
}

impl ToxiproxyError {
    /// The HTTP status Toxiproxy answered, for a [`Status`](Self::Status) error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ToxiproxyError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404: the proxy or toxic does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// A 409: a proxy or toxic of that name already exists.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// A 400: the server rejected the request body (missing field, unknown toxic type or
    /// stream, malformed JSON).
    pub fn is_bad_request(&self) -> bool {
        self.status() == Some(StatusCode::BAD_REQUEST)
    }

    /// The server could not be reached or did not answer in time.
    pub fn is_transport(&self) -> bool {
        matches!(self, ToxiproxyError::Transport { .. })
    }

    /// The request timed out (see [`ToxiproxyClient::with_timeout`](super::ToxiproxyClient::with_timeout)).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ToxiproxyError::Transport { source, .. } if source.is_timeout())
    }

    /// The message of Toxiproxy's `{"error": "..."}` body of a [`Status`](Self::Status)
    /// error, when it sent one.
    pub fn server_message(&self) -> Option<String> {
        let ToxiproxyError::Status { body, .. } = self else {
            return None;
        };
        let parsed: serde_json::Value = serde_json::from_str(body).ok()?;
        parsed.get("error")?.as_str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(status: StatusCode, body: &str) -> ToxiproxyError {
        ToxiproxyError::Status {
            method: Method::GET,
            url: "http://127.0.0.1:8474/proxies/nope".into(),
            status,
            body: body.into(),
        }
    }

    #[test]
    fn not_found_is_classified_as_not_found_only() {
        let err = status_error(
            StatusCode::NOT_FOUND,
            r#"{"error":"proxy not found","status":404}"#,
        );
        assert!(err.is_not_found());
        assert!(!err.is_conflict() && !err.is_bad_request() && !err.is_transport());
        assert_eq!(err.server_message().as_deref(), Some("proxy not found"));
    }

    #[test]
    fn conflict_is_classified_as_conflict_only() {
        let err = status_error(
            StatusCode::CONFLICT,
            r#"{"error":"proxy already exists","status":409}"#,
        );
        assert!(err.is_conflict());
        assert!(!err.is_not_found() && !err.is_bad_request());
    }

    #[test]
    fn bad_request_is_classified_as_bad_request_only() {
        let err = status_error(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid toxic type","status":400}"#,
        );
        assert!(err.is_bad_request());
        assert!(!err.is_not_found() && !err.is_conflict());
    }

    #[test]
    fn status_message_names_request_status_and_body() {
        let err = status_error(
            StatusCode::NOT_FOUND,
            r#"{"error":"proxy not found","status":404}"#,
        );
        let message = err.to_string();
        assert!(
            message.contains("GET http://127.0.0.1:8474/proxies/nope"),
            "{message}"
        );
        assert!(message.contains("404 Not Found"), "{message}");
        assert!(message.contains("proxy not found"), "{message}");
    }

    #[test]
    fn non_json_error_body_has_no_server_message() {
        let err = status_error(StatusCode::FORBIDDEN, "User agent not allowed");
        assert_eq!(err.server_message(), None);
        assert_eq!(ToxiproxyError::InvalidToxicity(2.0).server_message(), None);
    }

    #[test]
    fn invalid_toxicity_has_no_status() {
        let err = ToxiproxyError::InvalidToxicity(1.5);
        assert_eq!(err.status(), None);
        assert!(!err.is_not_found() && !err.is_transport() && !err.is_timeout());
        assert!(err.to_string().contains("1.5"));
    }
}
