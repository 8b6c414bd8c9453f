//! Prompts: submit, and the lifecycle around them (approve, reject, withdraw, edit,
//! cancel, retry). Running them is the prompt runner's work.

use tandem_domain::{
    CancelOutcome, Participant, Prompt, PromptId, PromptStatus, PromptText, Session, SessionId,
    Transition,
};
use tandem_ports::{Change, Page, PromptFilter, Write};
use uuid::Uuid;

use crate::credentials::Caller;
use crate::error::{Resource, ServiceError, read_error};
use crate::{Tandem, retry_on_conflict};

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelResult {
    /// The queued prompt is cancelled.
    Cancelled(Prompt),
    /// The prompt is running: `prompt.cancel_requested` asks its runner to stop
    /// the agent, and `prompt.cancelled` follows once it has.
    Requested(Prompt),
}

impl Tandem {
    /// A session's prompts in submission order, optionally of one status.
    pub async fn list_prompts(
        &self,
        caller: &Caller,
        session_id: SessionId,
        status: Option<PromptStatus>,
        page: Page<PromptId>,
    ) -> Result<Vec<Prompt>, ServiceError> {
        self.visible_session(caller, session_id).await?;
        let filter = PromptFilter { session_id, status };
        self.store
            .prompts(&filter, page)
            .await
            .map_err(ServiceError::Store)
    }

    /// One prompt of a session.
    pub async fn get_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        self.visible_session(caller, session_id).await?;
        self.prompt_of(session_id, id).await
    }

    /// A participant submits a prompt: queued at once or pending the host's approval.
    pub async fn submit_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        text: PromptText,
    ) -> Result<Prompt, ServiceError> {
        let id = PromptId::from_uuid(Uuid::now_v7());
        retry_on_conflict!({
            let (session, author) = self.acting(caller, session_id).await?;
            let submitted = Prompt::submit(id, &session, &author, text.clone(), self.now())?;
            self.commit_prompt(
                session_id,
                Write::InsertPrompt(submitted.state.clone()),
                submitted,
            )
            .await
        })
    }

    /// The host approves a pending prompt. Of two concurrent approvals (or an
    /// approval and a rejection), exactly one wins; the other gets
    /// `PromptAlreadyResolved`.
    pub async fn approve_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        self.update_prompt(caller, session_id, id, |prompt, session, by, now| {
            prompt.approve(session, by, now)
        })
        .await
    }

    /// The host rejects a pending prompt.
    pub async fn reject_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        self.update_prompt(caller, session_id, id, |prompt, session, by, now| {
            prompt.reject(session, by, now)
        })
        .await
    }

    /// The author withdraws their pending prompt.
    pub async fn withdraw_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        self.update_prompt(caller, session_id, id, |prompt, session, by, now| {
            prompt.withdraw(session, by, now)
        })
        .await
    }

    /// The author edits their pending prompt.
    pub async fn edit_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
        text: PromptText,
    ) -> Result<Prompt, ServiceError> {
        self.update_prompt(caller, session_id, id, |prompt, session, by, now| {
            prompt.edit(session, by, text.clone(), now)
        })
        .await
    }

    /// The host retries a finished prompt: a new prompt with the same text, queued.
    pub async fn retry_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        let new_id = PromptId::from_uuid(Uuid::now_v7());
        retry_on_conflict!({
            let (session, host) = self.acting(caller, session_id).await?;
            let original = self.prompt_of(session_id, id).await?;
            let retried = original.retry(new_id, &session, &host, self.now())?;
            self.commit_prompt(
                session_id,
                Write::InsertPrompt(retried.state.clone()),
                retried,
            )
            .await
        })
    }

    /// The host (any prompt) or its author cancels a queued or running prompt.
    pub async fn cancel_prompt(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<CancelResult, ServiceError> {
        retry_on_conflict!({
            let (session, by) = self.acting(caller, session_id).await?;
            let prompt = self.prompt_of(session_id, id).await?;
            match prompt.cancel(&session, &by, self.now())? {
                CancelOutcome::Cancelled(cancelled) => {
                    let cancelled = *cancelled;
                    self.commit_prompt(
                        session_id,
                        Write::UpdatePrompt(cancelled.state.clone()),
                        cancelled,
                    )
                    .await
                    .map(CancelResult::Cancelled)
                }
                CancelOutcome::StopAgent(requested) => {
                    // The runner, on whichever replica, learns of it from the log.
                    // Writing the prompt as read checks its version: if it ended
                    // meanwhile, the retry sees that and refuses.
                    let change = Change::new(session_id)
                        .write(Write::UpdatePrompt(prompt.clone()))
                        .events([requested])
                        .activity(self.now());
                    self.commit(change).await?;
                    Ok(CancelResult::Requested(prompt))
                }
            }
        })
    }

    /// Reads, transitions and writes one prompt, retrying on a lost race so that the
    /// loser sees the winner's result as a domain error.
    async fn update_prompt<F>(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PromptId,
        transition: F,
    ) -> Result<Prompt, ServiceError>
    where
        F: Fn(
            &Prompt,
            &Session,
            &Participant,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<Transition<Prompt>, tandem_domain::DomainError>,
    {
        retry_on_conflict!({
            let (session, by) = self.acting(caller, session_id).await?;
            let prompt = self.prompt_of(session_id, id).await?;
            let changed = transition(&prompt, &session, &by, self.now())?;
            self.commit_prompt(
                session_id,
                Write::UpdatePrompt(changed.state.clone()),
                changed,
            )
            .await
        })
    }

    async fn commit_prompt(
        &self,
        session_id: SessionId,
        write: Write,
        transition: Transition<Prompt>,
    ) -> Result<Prompt, ServiceError> {
        let change = Change::new(session_id)
            .write(write)
            .events(transition.events)
            .activity(self.now());
        self.commit(change).await?;
        Ok(transition.state)
    }

    pub(crate) async fn prompt_of(
        &self,
        session_id: SessionId,
        id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        let prompt = self
            .store
            .prompt(id)
            .await
            .map_err(read_error(Resource::Prompt))?;
        if prompt.session_id == session_id {
            Ok(prompt)
        } else {
            Err(ServiceError::NotFound(Resource::Prompt))
        }
    }
}
