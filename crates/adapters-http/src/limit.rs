//! Rate limits on writes (`POST`, `PATCH`, `PUT`, `DELETE`): each API key and
//! each participant has its own budget, and so has each client address for the
//! writes sent without a credential (joining through an invite). Over budget, the
//! answer is 429 `RATE_LIMITED` with a `Retry-After` header. Reads are never
//! limited here.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tandem_domain::{ApiKeyId, ParticipantId};
use tandem_service::Caller;

use crate::error::ApiError;
use crate::state::AppState;

/// How many writes one caller may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Writes per minute a caller may sustain.
    pub per_minute: NonZeroU32,
    /// Writes a caller may send at once, before the per-minute pace applies.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// 600 writes a minute with bursts of 60: far above what a person types,
    /// low enough that one runaway script cannot flood a session.
    pub const DEFAULT: Self = Self {
        per_minute: NonZeroU32::new(600).unwrap(),
        burst: NonZeroU32::new(60).unwrap(),
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whose budget a write is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Writer {
    ApiKey(ApiKeyId),
    Participant(ParticipantId),
    /// A client without a credential, by address (an IPv6 client by its /64,
    /// which one host usually holds whole).
    Address(IpAddr),
}

impl From<&Caller> for Writer {
    fn from(caller: &Caller) -> Self {
        match caller {
            Caller::ApiKey(key) => Self::ApiKey(key.id),
            Caller::Participant(participant) => Self::Participant(participant.id),
        }
    }
}

impl Writer {
    fn address(ip: IpAddr) -> Self {
        Self::Address(match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1_u128 << 64) - 1))),
        })
    }
}

/// How often budgets back at full are forgotten, so that memory follows the
/// callers active lately rather than every caller ever seen.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The budgets of every writer of this server.
pub(crate) struct WriteLimiter {
    limiter: DefaultKeyedRateLimiter<Writer>,
    clock: DefaultClock,
    started: Instant,
    /// Seconds after `started` at which idle budgets are next forgotten.
    next_forget: AtomicU64,
}

impl std::fmt::Debug for WriteLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteLimiter")
            .field("writers", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl WriteLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_minute(limit.per_minute).allow_burst(limit.burst);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            started: Instant::now(),
            next_forget: AtomicU64::new(FORGET_EVERY.as_secs()),
        }
    }

    /// Takes one write from `writer`'s budget, or says when to retry.
    pub(crate) fn check(&self, writer: &Writer) -> Result<(), ApiError> {
        self.forget_idle();
        self.limiter
            .check_key(writer)
            .map_err(|not_until| ApiError::rate_limited(not_until.wait_time_from(self.clock.now())))
    }

    /// Drops the budgets that are full again (indistinguishable from a new
    /// writer's), at most once per [`FORGET_EVERY`], on whichever request comes.
    fn forget_idle(&self) {
        let now = self.started.elapsed().as_secs();
        let due = self.next_forget.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_forget
                .compare_exchange(
                    due,
                    now + FORGET_EVERY.as_secs(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn writers(&self) -> usize {
        self.limiter.len()
    }
}

/// Whether a request changes something, and so counts against a budget.
pub(crate) fn is_write(method: &Method) -> bool {
    [Method::POST, Method::PATCH, Method::PUT, Method::DELETE].contains(method)
}

/// Limits the writes sent without a credential by the client's address. Without
/// connection info (the router served without it), there is no address to key
/// on, and nothing is limited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitedByAddress;

impl FromRequestParts<AppState> for LimitedByAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(ConnectInfo(address)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            state.limit_write(&parts.method, &Writer::address(address.ip()))?;
        }
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;
    use crate::error::ErrorCode;

    fn limiter(per_minute: u32, burst: u32) -> WriteLimiter {
        WriteLimiter::new(RateLimit {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        })
    }

    #[test]
    fn a_writer_gets_its_burst_then_a_429_with_retry_after() {
        let limiter = limiter(60, 3);
        let writer = Writer::ApiKey(ApiKeyId::from_uuid(uuid::Uuid::now_v7()));
        for _ in 0..3 {
            limiter.check(&writer).expect("within the burst");
        }
        let error = limiter.check(&writer).unwrap_err();
        assert_eq!(
            (error.status(), error.code()),
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited)
        );
        let response = error.into_response();
        // One write a second: the next is due in at most a second, rounded up.
        assert_eq!(response.headers()["retry-after"], "1");
        let other = Writer::ApiKey(ApiKeyId::from_uuid(uuid::Uuid::now_v7()));
        limiter
            .check(&other)
            .expect("another writer has its own budget");
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let limiter = limiter(1, 1);
        let writer = Writer::address("192.0.2.1".parse().unwrap());
        limiter.check(&writer).unwrap();
        let response = limiter.check(&writer).unwrap_err().into_response();
        let seconds: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((59..=60).contains(&seconds), "{seconds}");
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64_and_mapped_ipv4_is_ipv4() {
        let a = Writer::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Writer::address("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = Writer::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Writer::address("::ffff:192.0.2.1".parse().unwrap()),
            Writer::address("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn full_budgets_are_forgotten() {
        let limiter = limiter(600, 60);
        for n in 0..100_u8 {
            limiter
                .check(&Writer::address(IpAddr::from([192, 0, 2, n])))
                .unwrap();
        }
        assert_eq!(limiter.writers(), 100);
        // Once a budget has refilled (a tenth of a second here), it is forgotten.
        std::thread::sleep(Duration::from_millis(300));
        limiter.next_forget.store(0, Ordering::Relaxed);
        limiter.forget_idle();
        assert_eq!(limiter.writers(), 0);
    }

    #[test]
    fn only_writes_count() {
        for method in [Method::POST, Method::PATCH, Method::PUT, Method::DELETE] {
            assert!(is_write(&method), "{method}");
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_write(&method), "{method}");
        }
    }
}
