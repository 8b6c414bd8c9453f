//! Tandem's outbound webhook adapter: [`HttpWebhookSender`], the
//! `WebhookSender` that POSTs signed requests to endpoints, safely.
//!
//! - Only `https` URLs, unless the operator allows plain `http`.
//! - Only public unicast addresses: a host that resolves to loopback, private,
//!   shared, link-local (cloud metadata), documentation, multicast or reserved
//!   addresses, in IPv4 or IPv6 (IPv4-mapped forms included), is refused, unless
//!   the operator allows its network. The check runs in the HTTP client's own
//!   resolver, so the connection goes to the very addresses checked (no DNS
//!   rebinding between check and connect); IP literals are checked directly.
//! - No proxy from the environment, no redirects followed, connect and total
//!   timeouts, and at most `max_response_bytes` of an answer read.

mod policy;

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tandem_domain::{AttemptResult, WebhookUrl};
use tandem_ports::{Attempt, OutboundRequest, TargetRefused, WebhookSender};

pub use ipnet::IpNet;
pub use policy::refusal;

/// What outbound requests may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Whether plain `http://` URLs are allowed (`https` always is).
    pub allow_http: bool,
    /// Networks allowed although they are not public (e.g. `127.0.0.0/8`).
    pub allowed_networks: Vec<IpNet>,
    /// How long connecting (TCP and TLS) may take.
    pub connect_timeout: Duration,
    /// How long a whole request may take, answer included.
    pub timeout: Duration,
    /// How much of an answer is read at most (the rest is dropped).
    pub max_response_bytes: usize,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self {
            allow_http: false,
            allowed_networks: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_response_bytes: 64 * 1024,
        }
    }
}

impl OutboundPolicy {
    /// Why `ip` may not be reached, if it may not.
    fn refusal(&self, ip: std::net::IpAddr) -> Option<&'static str> {
        policy::refusal(ip, &self.allowed_networks)
    }

    /// Why `url` may not be requested, as far as it can be told without DNS.
    fn refuse_statically(&self, url: &WebhookUrl) -> Result<(), TargetRefused> {
        if !url.is_https() && !self.allow_http {
            return Err(TargetRefused(
                "only https:// URLs are allowed on this server".to_owned(),
            ));
        }
        if let Some(ip) = url.ip()
            && let Some(why) = self.refusal(ip)
        {
            return Err(TargetRefused(format!("{ip} is {why}")));
        }
        Ok(())
    }
}

/// A resolver that refuses names resolving to any address the policy forbids,
/// so the client connects only to checked addresses.
struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve(&policy, &host).await?;
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses of `host`, all of them allowed; `TargetRefused` otherwise.
async fn resolve(policy: &OutboundPolicy, host: &str) -> Result<Vec<SocketAddr>, TargetRefused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| TargetRefused(format!("{host} does not resolve")))?
        .collect();
    if addresses.is_empty() {
        return Err(TargetRefused(format!("{host} has no address")));
    }
    for address in &addresses {
        if let Some(why) = policy.refusal(address.ip()) {
            return Err(TargetRefused(format!(
                "{host} resolves to {}, {why}",
                address.ip()
            )));
        }
    }
    Ok(addresses)
}

/// The `WebhookSender` over HTTP(S).
#[derive(Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

impl std::fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The client could not be built (TLS configuration).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SenderError(String);

impl HttpWebhookSender {
    /// A sender under `policy`.
    pub fn new(policy: OutboundPolicy) -> Result<Self, SenderError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .user_agent(concat!("Tandem-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| SenderError(format!("no HTTP client: {error}")))?;
        Ok(Self { client, policy })
    }
}

/// TLS for `https` endpoints: rustls with the *ring* provider and the Mozilla
/// root certificates compiled in.
fn tls_config() -> Result<rustls::ClientConfig, SenderError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| SenderError(format!("no TLS configuration: {error}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn check(&self, url: &WebhookUrl) -> Result<(), TargetRefused> {
        self.policy.refuse_statically(url)?;
        if url.ip().is_none() {
            resolve(&self.policy, url.host()).await?;
        }
        Ok(())
    }

    async fn send(&self, request: OutboundRequest) -> Attempt {
        let started = Instant::now();
        if let Err(refused) = self.policy.refuse_statically(&request.url) {
            return Attempt {
                result: AttemptResult::Refused(refused.0),
                latency: started.elapsed(),
            };
        }
        let mut builder = self
            .client
            .post(request.url.as_str())
            .header("content-type", "application/json")
            .body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let result = match builder.send().await {
            Ok(response) => self.answered(response).await,
            Err(error) => failed(&error),
        };
        Attempt {
            result,
            latency: started.elapsed(),
        }
    }
}

impl HttpWebhookSender {
    /// The answer's status and `Retry-After`, after reading (at most the cap
    /// of) its body, so that the connection can be reused.
    async fn answered(&self, mut response: reqwest::Response) -> AttemptResult {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(retry_after);
        // The status is what counts; a body cut short (or failing) changes nothing.
        let mut read = 0usize;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > self.policy.max_response_bytes {
                break;
            }
        }
        AttemptResult::Answered {
            status,
            retry_after,
        }
    }
}

/// What a failed request means: a refused target (from the guarded resolver),
/// a timeout, or an unreachable endpoint. Never says the URL (it may hold a
/// secret, as Slack's do).
fn failed(error: &reqwest::Error) -> AttemptResult {
    let mut source = error.source();
    let mut innermost = None;
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
            return AttemptResult::Refused(refused.0.clone());
        }
        innermost = Some(cause);
        source = cause.source();
    }
    if error.is_timeout() {
        return AttemptResult::TimedOut;
    }
    let why = innermost.map_or_else(
        || {
            if error.is_connect() {
                "cannot connect".to_owned()
            } else {
                "the request failed".to_owned()
            }
        },
        ToString::to_string,
    );
    AttemptResult::Unreachable(why.chars().take(200).collect())
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 5 "), Some(Duration::from_secs(5)));
        let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(90)).to_rfc2822();
        let parsed = retry_after(&soon).expect("a date");
        assert!(parsed > Duration::from_secs(80) && parsed <= Duration::from_secs(90));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None, "past");
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn http_and_internal_literals_are_refused_without_dns() {
        let policy = OutboundPolicy::default();
        let refused = |url: &str| policy.refuse_statically(&WebhookUrl::parse(url).unwrap());
        assert!(refused("https://hooks.example.com/x").is_ok());
        assert!(refused("http://hooks.example.com/x").is_err());
        assert!(refused("https://127.0.0.1/x").is_err());
        assert!(refused("https://[::ffff:169.254.169.254]/x").is_err());
        assert!(refused("https://[fd00:ec2::254]/latest").is_err());
        let local = OutboundPolicy {
            allow_http: true,
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..OutboundPolicy::default()
        };
        assert!(
            local
                .refuse_statically(&WebhookUrl::parse("http://127.0.0.1:9/x").unwrap())
                .is_ok()
        );
    }
}
