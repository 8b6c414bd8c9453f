//! The permission matrix of DESIGN.md §2, one function per action.
//!
//! These functions are the single source of truth for who may do what; every
//! transition in this crate calls them, so a caller cannot skip a check.

use crate::enums::string_enum;
use crate::participant::Role;
use crate::session::SessionMode;

string_enum! {
    /// An action the matrix rules on, named for error messages.
    Action("action") {
        Comment => "comment",
        SubmitPrompt => "submit prompts",
        ResolvePrompt => "approve or reject prompts",
        WithdrawPrompt => "withdraw this prompt",
        EditPrompt => "edit this prompt",
        CancelPrompt => "cancel this prompt",
        RetryPrompt => "retry prompts",
        AnswerPermission => "answer agent permission requests",
        ManageSession => "manage the session",
        Leave => "leave the session",
    }
}

/// How a prompt enters the queue when the matrix admits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptAdmission {
    /// The prompt is queued at once.
    Direct,
    /// The prompt waits for the host's approval.
    NeedsApproval,
}

/// Everyone in a session may read it: session, participants, comments, prompts, events.
pub const fn may_read(role: Role) -> bool {
    match role {
        Role::Host | Role::Collaborator | Role::Viewer => true,
    }
}

/// Host always; collaborators unless the session is view-only; viewers never.
pub const fn may_comment(role: Role, mode: SessionMode) -> bool {
    match role {
        Role::Host => true,
        Role::Collaborator => !matches!(mode, SessionMode::ViewOnly),
        Role::Viewer => false,
    }
}

/// Whether (and how) a prompt of this role is admitted in this mode: the host's run
/// directly; a collaborator's wait for approval or run directly by mode.
pub const fn prompt_admission(role: Role, mode: SessionMode) -> Option<PromptAdmission> {
    match role {
        Role::Host => Some(PromptAdmission::Direct),
        Role::Collaborator => match mode {
            SessionMode::PromptWithApproval => Some(PromptAdmission::NeedsApproval),
            SessionMode::PromptDirect => Some(PromptAdmission::Direct),
            SessionMode::ViewOnly | SessionMode::CommentOnly => None,
        },
        Role::Viewer => None,
    }
}

/// Only the host approves or rejects prompts.
pub const fn may_resolve_prompt(role: Role) -> bool {
    matches!(role, Role::Host)
}

/// The author withdraws their own pending prompt, unless they are (now) a viewer.
pub const fn may_withdraw_prompt(role: Role, is_author: bool) -> bool {
    match role {
        Role::Host | Role::Collaborator => is_author,
        Role::Viewer => false,
    }
}

/// The author edits their own pending prompt, unless they are (now) a viewer.
pub const fn may_edit_prompt(role: Role, is_author: bool) -> bool {
    may_withdraw_prompt(role, is_author)
}

/// The host cancels any queued or running prompt; a collaborator only their own.
pub const fn may_cancel_prompt(role: Role, is_author: bool) -> bool {
    match role {
        Role::Host => true,
        Role::Collaborator => is_author,
        Role::Viewer => false,
    }
}

/// Only the host retries a finished prompt.
pub const fn may_retry_prompt(role: Role) -> bool {
    matches!(role, Role::Host)
}

/// Only the host answers the agent's permission requests.
pub const fn may_answer_permission(role: Role) -> bool {
    matches!(role, Role::Host)
}

/// Only the host changes the mode, manages invites and roles, removes participants
/// and closes the session.
pub const fn may_manage_session(role: Role) -> bool {
    matches!(role, Role::Host)
}

/// Collaborators and viewers leave; the host closes the session instead.
pub const fn may_leave(role: Role) -> bool {
    !matches!(role, Role::Host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PromptAdmission::{Direct, NeedsApproval};
    use Role::{Collaborator, Host, Viewer};
    use SessionMode::{CommentOnly, PromptDirect, PromptWithApproval, ViewOnly};

    /// The matrix of DESIGN.md §2 written out cell by cell; any change to a rule
    /// above breaks one of these rows.
    #[test]
    fn comment_column() {
        for mode in SessionMode::ALL.iter().copied() {
            assert!(may_comment(Host, mode));
            assert!(!may_comment(Viewer, mode));
        }
        assert!(!may_comment(Collaborator, ViewOnly));
        assert!(may_comment(Collaborator, CommentOnly));
        assert!(may_comment(Collaborator, PromptWithApproval));
        assert!(may_comment(Collaborator, PromptDirect));
    }

    #[test]
    fn prompt_column() {
        for mode in SessionMode::ALL.iter().copied() {
            assert_eq!(prompt_admission(Host, mode), Some(Direct));
            assert_eq!(prompt_admission(Viewer, mode), None);
        }
        assert_eq!(prompt_admission(Collaborator, ViewOnly), None);
        assert_eq!(prompt_admission(Collaborator, CommentOnly), None);
        assert_eq!(
            prompt_admission(Collaborator, PromptWithApproval),
            Some(NeedsApproval)
        );
        assert_eq!(prompt_admission(Collaborator, PromptDirect), Some(Direct));
    }

    #[test]
    fn host_only_actions() {
        for f in [
            may_resolve_prompt,
            may_retry_prompt,
            may_answer_permission,
            may_manage_session,
        ] {
            assert!(f(Host));
            assert!(!f(Collaborator));
            assert!(!f(Viewer));
        }
    }

    #[test]
    fn own_prompt_actions() {
        for f in [may_withdraw_prompt, may_edit_prompt] {
            assert!(f(Host, true));
            assert!(!f(Host, false));
            assert!(f(Collaborator, true));
            assert!(!f(Collaborator, false));
            assert!(!f(Viewer, true));
            assert!(!f(Viewer, false));
        }
        assert!(may_cancel_prompt(Host, true));
        assert!(may_cancel_prompt(Host, false));
        assert!(may_cancel_prompt(Collaborator, true));
        assert!(!may_cancel_prompt(Collaborator, false));
        assert!(!may_cancel_prompt(Viewer, true));
        assert!(!may_cancel_prompt(Viewer, false));
    }

    #[test]
    fn read_and_leave() {
        for role in Role::ALL.iter().copied() {
            assert!(may_read(role));
        }
        assert!(!may_leave(Host));
        assert!(may_leave(Collaborator));
        assert!(may_leave(Viewer));
    }
}
