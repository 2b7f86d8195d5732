//! Errors from reading a pact file.
//!
//! Every error names where the problem is: the JSON path inside the file (for example
//! `$.interactions[2].response.matchingRules.body['$.items'].matchers[0]`) and, when it is
//! inside an interaction, that interaction's description.

/// A pact file could not be read, or uses something faultline does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PactError {
    /// The text is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// `metadata.pactSpecification.version` is missing.
    #[error(
        "missing $.metadata.pactSpecification.version: faultline reads Pact specification V4 files, \
         which must declare version \"4.0\""
    )]
    MissingSpecVersion,
    /// The file declares a specification version other than 4.0.
    #[error(
        "unsupported Pact specification version {found:?} at $.metadata.pactSpecification.version: \
         faultline reads and writes V4 (\"4.0\") only; regenerate the pact with a V4 consumer library"
    )]
    UnsupportedSpecVersion {
        /// The version found in the file.
        found: String,
    },
    /// The specification version is written as a number (`4.0`) rather than a string.
    #[error(
        "$.metadata.pactSpecification.version is the number {found}; it must be a string: \"4.0\" \
         (faultline reads V4 files)"
    )]
    SpecVersionNotString {
        /// The number found, as written.
        found: String,
    },
    /// An interaction has a `type` faultline does not handle.
    #[error(
        "interaction {interaction:?} at {path}: unsupported interaction type {kind:?}; \
         supported types are \"Synchronous/HTTP\" and \"Asynchronous/Messages\""
    )]
    UnsupportedInteractionType {
        /// Description of the interaction.
        interaction: String,
        /// JSON path of the `type` field.
        path: String,
        /// The type found.
        kind: String,
    },
    /// A matching rule uses a matcher faultline does not implement.
    #[error("{}at {path}: unsupported matcher {matcher:?}; {hint}", in_interaction(.interaction))]
    UnsupportedMatcher {
        /// Description of the interaction, when the rule is inside one.
        interaction: Option<String>,
        /// JSON path of the matcher object.
        path: String,
        /// The `match` value found.
        matcher: String,
        /// What is supported instead.
        hint: String,
    },
    /// A feature faultline does not support (plugins, unknown fields, binary matching...).
    #[error("{}at {path}: unsupported feature: {feature}", in_interaction(.interaction))]
    UnsupportedFeature {
        /// Description of the interaction, when the feature is inside one.
        interaction: Option<String>,
        /// JSON path of the offending field.
        path: String,
        /// What the feature is.
        feature: String,
    },
    /// A field has the wrong shape.
    #[error("{}at {path}: {problem}", in_interaction(.interaction))]
    Invalid {
        /// Description of the interaction, when the field is inside one.
        interaction: Option<String>,
        /// JSON path of the field.
        path: String,
        /// What was expected.
        problem: String,
    },
}

fn in_interaction(interaction: &Option<String>) -> String {
    match interaction {
        Some(name) => format!("interaction {name:?} "),
        None => String::new(),
    }
}

impl PactError {
    /// The JSON path inside the file this error points at, when it has one.
    pub fn json_path(&self) -> Option<&str> {
        match self {
            PactError::UnsupportedInteractionType { path, .. }
            | PactError::UnsupportedMatcher { path, .. }
            | PactError::UnsupportedFeature { path, .. }
            | PactError::Invalid { path, .. } => Some(path),
            PactError::MissingSpecVersion
            | PactError::UnsupportedSpecVersion { .. }
            | PactError::SpecVersionNotString { .. } => {
                Some("$.metadata.pactSpecification.version")
            }
            PactError::MalformedJson { .. } => None,
        }
    }
}
