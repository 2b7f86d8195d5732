//! A client of the broker's API, for `faultline contracts publish|can-i-deploy|
//! record-deployment|verify --broker-url` and the tests. It speaks only the Pact Broker
//! resources, so it works with any broker that serves them.
//!
//! Its own crate, with the wire types the broker server (`faultline-broker`) and its clients
//! share ([`Selector`], [`enc`]): a program that only talks to a broker (the harness's
//! verification through a broker) does not build the server (axum, sqlx).

use std::time::Duration;

use base64::Engine;
use faultline_contracts::verify::{Outcome, PactResult};
use faultline_contracts::{Interaction, Pact};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use serde::{Deserialize, Serialize};

/// A name as one path segment, percent-encoded (names may hold `/`, spaces, anything).
pub fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A consumer version selector (the Pact Broker's fields faultline honours).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub consumer: Option<String>,
    pub main_branch: Option<bool>,
    pub branch: Option<String>,
    pub matching_branch: Option<bool>,
    pub tag: Option<String>,
    pub latest: Option<bool>,
    pub deployed: Option<bool>,
    pub released: Option<bool>,
    pub deployed_or_released: Option<bool>,
    pub environment: Option<String>,
}

/// A request the broker refused, or could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker answered with an error status; `message` is its explanation.
    #[error("{method} {url}: {status}: {message}")]
    Refused {
        method: Method,
        url: String,
        status: StatusCode,
        message: String,
    },
    /// The broker could not be reached or answered something unreadable.
    #[error("{method} {url}: {message}")]
    Transport {
        method: Method,
        url: String,
        message: String,
    },
}

impl ClientError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            ClientError::Transport { .. } => None,
        }
    }
}

/// A pact the broker asked a provider to verify.
#[derive(Debug, Clone)]
pub struct PactToVerify {
    /// The pact, its interactions marked pending when the broker says the pact is pending.
    pub pact: Pact,
    /// Where it was fetched (its `self` link).
    pub url: String,
    /// Where its verification results go.
    pub publish_url: String,
    /// The broker's `verificationProperties.pending`.
    pub pending: bool,
    /// The broker's notices (why it was selected, whether it is pending).
    pub notices: Vec<String>,
}

/// can-i-deploy's answer as the broker gave it.
#[derive(Debug, Clone)]
pub struct CanIDeploy {
    pub deployable: bool,
    pub reason: String,
    /// The checks that failed, one line each.
    pub failures: Vec<String>,
    pub notices: Vec<String>,
    pub raw: Value,
}

/// A client of one broker with one token.
#[derive(Debug, Clone)]
pub struct BrokerClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl BrokerClient {
    /// A client of the broker at `base_url`, sending `token` as a bearer token.
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// The broker's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `method url` with an optional JSON body; the JSON answer, or the refusal.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("accept", "application/hal+json, application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |message: String| ClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            message,
        };
        let response = request.send().await.map_err(|e| {
            transport(format!(
                "{e} (is the broker running? `faultline broker serve` starts one)"
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            let message = json["error"].as_str().map(str::to_string).unwrap_or(text);
            return Err(ClientError::Refused {
                method,
                url,
                status,
                message,
            });
        }
        Ok(json)
    }

    /// Publishes pact texts for `consumer` `version` on `branch` in one request (all or nothing).
    pub async fn publish(
        &self,
        consumer: &str,
        version: &str,
        branch: Option<&str>,
        pacts: &[Pact],
    ) -> Result<Value, ClientError> {
        let contracts: Vec<Value> = pacts
            .iter()
            .map(|p| {
                json!({
                    "consumerName": p.consumer.name,
                    "providerName": p.provider.name,
                    "specification": "pact",
                    "contentType": "application/json",
                    "content": base64::engine::general_purpose::STANDARD.encode(p.to_json_string()),
                })
            })
            .collect();
        let mut body = json!({
            "pacticipantName": consumer,
            "pacticipantVersionNumber": version,
            "contracts": contracts,
        });
        if let Some(branch) = branch {
            body["branch"] = json!(branch);
        }
        self.send(Method::POST, "/contracts/publish", Some(&body))
            .await
    }

    /// Sets a pacticipant's main branch (creating it).
    pub async fn set_main_branch(
        &self,
        pacticipant: &str,
        branch: &str,
    ) -> Result<(), ClientError> {
        self.send(
            Method::PUT,
            &format!("/pacticipants/{}", enc(pacticipant)),
            Some(&json!({"mainBranch": branch})),
        )
        .await
        .map(drop)
    }

    /// Creates `name` unless it exists; its uuid.
    pub async fn ensure_environment(
        &self,
        name: &str,
        production: bool,
    ) -> Result<String, ClientError> {
        if let Some(uuid) = self.environment_uuid(name).await? {
            return Ok(uuid);
        }
        let created = self
            .send(
                Method::POST,
                "/environments",
                Some(&json!({"name": name, "production": production})),
            )
            .await?;
        Ok(created["uuid"].as_str().unwrap_or_default().to_string())
    }

    async fn environment_uuid(&self, name: &str) -> Result<Option<String>, ClientError> {
        let list = self.send(Method::GET, "/environments", None).await?;
        Ok(list["_embedded"]["environments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["uuid"].as_str())
            .map(str::to_string))
    }

    /// Records that `pacticipant` `version` is now deployed (`release`: released) in
    /// `environment`.
    pub async fn record_deployment(
        &self,
        pacticipant: &str,
        version: &str,
        environment: &str,
        release: bool,
    ) -> Result<Value, ClientError> {
        let uuid =
            self.environment_uuid(environment)
                .await?
                .ok_or_else(|| ClientError::Refused {
                    method: Method::GET,
                    url: format!("{}/environments", self.base),
                    status: StatusCode::NOT_FOUND,
                    message: format!(
                        "no environment {environment:?}; create it first (POST /environments)"
                    ),
                })?;
        let kind = if release {
            "released-versions"
        } else {
            "deployed-versions"
        };
        self.send(
            Method::POST,
            &format!(
                "/pacticipants/{}/versions/{}/{kind}/environment/{uuid}",
                enc(pacticipant),
                enc(version)
            ),
            Some(&json!({})),
        )
        .await
    }

    /// Asks whether `pacticipant` `version` can be deployed to `environment`, with the
    /// question the Pact Broker's own `can-i-deploy --to-environment` sends.
    pub async fn can_i_deploy(
        &self,
        pacticipant: &str,
        version: &str,
        environment: &str,
    ) -> Result<CanIDeploy, ClientError> {
        let raw = self
            .send(
                Method::GET,
                &format!(
                    "/matrix?q[][pacticipant]={}&q[][version]={}&latestby=cvpv&environment={}",
                    enc(pacticipant),
                    enc(version),
                    enc(environment)
                ),
                None,
            )
            .await?;
        let notices = |kind: &str| -> Vec<String> {
            raw["notices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["type"] == kind)
                .filter_map(|n| n["text"].as_str().map(str::to_string))
                .collect()
        };
        Ok(CanIDeploy {
            deployable: raw["summary"]["deployable"] == true,
            reason: raw["summary"]["reason"].as_str().unwrap_or_default().into(),
            failures: notices("error"),
            notices: notices("warning"),
            raw,
        })
    }

    /// The pacts `provider` should verify (through the index's
    /// `pb:provider-pacts-for-verification`), each fetched by its `self` link.
    pub async fn pacts_for_verification(
        &self,
        provider: &str,
        selectors: &[Selector],
        include_pending: bool,
        provider_branch: Option<&str>,
    ) -> Result<Vec<PactToVerify>, ClientError> {
        let index = self.send(Method::GET, "/", None).await?;
        let template = index["_links"]["pb:provider-pacts-for-verification"]["href"]
            .as_str()
            .unwrap_or("/pacts/provider/{provider}/for-verification")
            .to_string();
        let url = template.replace("{provider}", &enc(provider));
        let mut body = json!({
            "consumerVersionSelectors": selectors,
            "includePendingStatus": include_pending,
        });
        if let Some(branch) = provider_branch {
            body["providerVersionBranch"] = json!(branch);
        }
        let answer = self.send(Method::POST, &url, Some(&body)).await?;
        let mut out = Vec::new();
        for entry in answer["_embedded"]["pacts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let href = entry["_links"]["self"]["href"].as_str().unwrap_or_default();
            let pending = entry["verificationProperties"]["pending"] == true;
            let notices = entry["verificationProperties"]["notices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["text"].as_str().map(str::to_string))
                .collect();
            let mut document = self.send(Method::GET, href, None).await?;
            let publish_url = document["_links"]["pb:publish-verification-results"]["href"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(doc) = document.as_object_mut() {
                doc.remove("_links");
                doc.remove("pactVersionSha");
            }
            let mut pact = Pact::from_json(&document).map_err(|e| ClientError::Transport {
                method: Method::GET,
                url: href.to_string(),
                message: format!("the broker's pact is not one faultline reads: {e}"),
            })?;
            if pending {
                for interaction in &mut pact.interactions {
                    match interaction {
                        Interaction::Http(h) => h.info.pending = true,
                        Interaction::Message(m) => m.info.pending = true,
                    }
                }
            }
            out.push(PactToVerify {
                pact,
                url: href.to_string(),
                publish_url,
                pending,
                notices,
            });
        }
        Ok(out)
    }

    /// Publishes `result` (faultline's verification of `pact`) as `provider` `version` on
    /// `branch`: the branch first (as the Pact tools do, so pending is judged per branch),
    /// then the result with one entry per interaction.
    pub async fn publish_verification(
        &self,
        pact: &PactToVerify,
        result: &PactResult,
        version: &str,
        branch: Option<&str>,
        build_url: Option<&str>,
    ) -> Result<Value, ClientError> {
        if let Some(branch) = branch {
            self.send(
                Method::PUT,
                &format!(
                    "/pacticipants/{}/branches/{}/versions/{}",
                    enc(&result.provider),
                    enc(branch),
                    enc(version)
                ),
                Some(&json!({})),
            )
            .await?;
        }
        let tests: Vec<Value> = result
            .interactions
            .iter()
            .map(|i| {
                let mut entry = json!({
                    "interactionDescription": i.description,
                    "success": i.outcome == Outcome::Passed,
                });
                if i.outcome != Outcome::Passed {
                    entry["mismatches"] = json!(i
                        .problems()
                        .into_iter()
                        .map(|p| json!({"description": p}))
                        .collect::<Vec<_>>());
                }
                entry
            })
            .collect();
        let success = result
            .interactions
            .iter()
            .all(|i| i.outcome == Outcome::Passed);
        let mut body = json!({
            "success": success,
            "providerApplicationVersion": version,
            "testResults": tests,
            "verifiedBy": {"implementation": "faultline", "version": env!("CARGO_PKG_VERSION")},
        });
        if let Some(url) = build_url {
            body["buildUrl"] = json!(url);
        }
        self.send(Method::POST, &pact.publish_url, Some(&body))
            .await
    }
}
