//! What a client reads before it acts: who its credential belongs to, and the
//! names of the agent profiles a new session may run.

use tandem_domain::AgentProfileName;

use crate::Tandem;
use crate::credentials::Caller;
use crate::error::{Resource, ServiceError, read_error};

/// The agent profiles of this server, by name only: how a profile runs (its
/// command, its environment) is server configuration that clients never see.
#[derive(Debug, Clone)]
pub struct AgentProfiles {
    /// Every profile a session may name, in name order.
    pub names: Vec<AgentProfileName>,
    /// The profile of sessions created without one.
    pub default: AgentProfileName,
}

impl Tandem {
    /// The caller as it is now: a participant read afresh (its role may have
    /// changed since its token was first recognised; one who left or was removed
    /// is `ParticipantGone`), or the API key.
    pub async fn whoami(&self, caller: &Caller) -> Result<Caller, ServiceError> {
        match caller {
            Caller::ApiKey(_) => Ok(caller.clone()),
            Caller::Participant(known) => {
                let participant = self
                    .store
                    .participant(known.id)
                    .await
                    .map_err(read_error(Resource::Participant))?;
                if participant.is_present() {
                    Ok(Caller::Participant(participant))
                } else {
                    Err(ServiceError::ParticipantGone)
                }
            }
        }
    }

    /// The agent profiles a new session may name: for API keys of any scope.
    pub fn agent_profiles(&self, caller: &Caller) -> Result<AgentProfiles, ServiceError> {
        match caller {
            Caller::ApiKey(_) => Ok(AgentProfiles {
                names: self.config.agent_profiles.iter().cloned().collect(),
                default: self.config.default_agent_profile.clone(),
            }),
            Caller::Participant(_) => Err(ServiceError::ApiKeyRequired),
        }
    }
}
