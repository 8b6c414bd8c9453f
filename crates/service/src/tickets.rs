//! Stream tickets: a browser's `EventSource` cannot send an `Authorization`
//! header, so a participant (or key) trades its credential for a one-use ticket,
//! valid 60 seconds, that opens the session's event stream once. Credentials never
//! go in URLs; a ticket in a URL is worthless after its first use.

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::SessionId;
use tandem_ports::{StreamTicket, TicketHolder};

use crate::Tandem;
use crate::credentials::{Caller, Secret, TokenKind, hash_token};
use crate::error::{Resource, ServiceError, missing_means, read_error};

/// How long a stream ticket may wait for its one use.
pub const STREAM_TICKET_TTL: TimeDelta = TimeDelta::seconds(60);

/// A new ticket, shown once.
#[derive(Debug)]
pub struct IssuedTicket {
    pub ticket: Secret,
    pub expires_at: DateTime<Utc>,
}

impl Tandem {
    /// Deletes the stream tickets that have expired (used or not); returns how
    /// many. The sweeper calls it.
    pub async fn purge_stream_tickets(&self) -> Result<u64, ServiceError> {
        self.store
            .purge_stream_tickets(self.now())
            .await
            .map_err(ServiceError::Store)
    }

    /// Issues a one-use stream ticket for a session the caller may read.
    pub async fn create_stream_ticket(
        &self,
        caller: &Caller,
        session_id: SessionId,
    ) -> Result<IssuedTicket, ServiceError> {
        self.visible_session(caller, session_id).await?;
        let holder = match caller {
            Caller::Participant(participant) => TicketHolder::Participant(participant.id),
            Caller::ApiKey(key) => TicketHolder::ApiKey(key.id),
        };
        let expires_at = self.now() + STREAM_TICKET_TTL;
        let (ticket, hash) = Secret::generate(TokenKind::StreamTicket);
        self.store
            .insert_stream_ticket(
                &hash,
                &StreamTicket {
                    session_id,
                    holder,
                    expires_at,
                },
            )
            .await
            .map_err(ServiceError::Store)?;
        Ok(IssuedTicket { ticket, expires_at })
    }

    /// Uses a ticket up and returns who it stands for, checked again now: a
    /// participant who left or a revoked key gets nothing. A ticket works only for
    /// the session it was issued for.
    pub async fn redeem_stream_ticket(
        &self,
        ticket: &str,
        session_id: SessionId,
    ) -> Result<Caller, ServiceError> {
        let redeemed = self
            .store
            .redeem_stream_ticket(&hash_token(ticket), self.now())
            .await
            .map_err(missing_means(ServiceError::Unauthenticated))?;
        if redeemed.session_id != session_id {
            return Err(ServiceError::Unauthenticated);
        }
        match redeemed.holder {
            TicketHolder::Participant(id) => {
                let participant = self
                    .store
                    .participant(id)
                    .await
                    .map_err(read_error(Resource::Participant))?;
                if participant.is_present() {
                    Ok(Caller::Participant(participant))
                } else {
                    Err(ServiceError::ParticipantGone)
                }
            }
            TicketHolder::ApiKey(id) => {
                let key = self
                    .store
                    .api_key(id)
                    .await
                    .map_err(read_error(Resource::ApiKey))?;
                if key.revoked_at.is_none() {
                    Ok(Caller::ApiKey(key))
                } else {
                    Err(ServiceError::Unauthenticated)
                }
            }
        }
    }
}
