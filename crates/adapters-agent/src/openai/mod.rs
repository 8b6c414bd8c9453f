//! The `openai` executor: a plain model behind any OpenAI-compatible endpoint
//! (Ollama, vLLM, llama.cpp server, ...), its answers streamed from
//! `POST {base_url}/chat/completions`.

mod session;
mod stream;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tandem_domain::AgentProfileName;
use tandem_ports::{AgentError, AgentExecutor, AgentSession, AgentStart};

use self::session::OpenAiSession;

/// Where and what to ask: the endpoint's base URL (for example
/// `http://localhost:11434/v1`), the model, the API key sent as a bearer token, and
/// an optional system prompt that opens every conversation.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiProfile {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub system_prompt: Option<String>,
}

impl OpenAiProfile {
    /// A profile for `model` at `base_url`, with no key and no system prompt.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            system_prompt: None,
        }
    }

    fn completions_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// The key never appears in logs or debug output.
impl fmt::Debug for OpenAiProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProfile")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "system_prompt",
                &self.system_prompt.as_ref().map(String::len),
            )
            .finish()
    }
}

/// Starts conversations with OpenAI-compatible endpoints from the configured
/// profiles. Each agent session keeps its own conversation history in memory.
#[derive(Debug, Clone)]
pub struct OpenAiExecutor {
    profiles: BTreeMap<AgentProfileName, Arc<OpenAiProfile>>,
    client: reqwest::Client,
}

impl OpenAiExecutor {
    /// How long the endpoint may stay silent (before the first token or between
    /// two chunks) before the prompt fails.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(300);

    /// An executor for these profiles (server configuration, never client input).
    pub fn new(profiles: BTreeMap<AgentProfileName, OpenAiProfile>) -> Result<Self, AgentError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Self::READ_TIMEOUT)
            .build()
            .map_err(|error| AgentError::Unavailable(format!("no HTTP client: {error}")))?;
        Ok(Self {
            profiles: profiles
                .into_iter()
                .map(|(name, profile)| (name, Arc::new(profile)))
                .collect(),
            client,
        })
    }

    /// Whether a profile of this name is configured.
    pub fn has_profile(&self, name: &AgentProfileName) -> bool {
        self.profiles.contains_key(name)
    }
}

/// TLS for `https` endpoints: rustls with the *ring* provider (already used by the
/// database driver) and the Mozilla root certificates compiled in, so that a small
/// container image needs no CA bundle.
fn tls_config() -> Result<rustls::ClientConfig, AgentError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| AgentError::Unavailable(format!("no TLS configuration: {error}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

#[async_trait]
impl AgentExecutor for OpenAiExecutor {
    /// Nothing is contacted yet: an unreachable endpoint shows on the first prompt.
    async fn start(&self, request: AgentStart) -> Result<Box<dyn AgentSession>, AgentError> {
        let profile = self
            .profiles
            .get(&request.profile)
            .ok_or_else(|| AgentError::UnknownProfile(request.profile.to_string()))?;
        Ok(Box::new(OpenAiSession::new(
            format!("openai-{}", request.session_id),
            request.resume.is_some(),
            Arc::clone(profile),
            self.client.clone(),
        )))
    }
}
