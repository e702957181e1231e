//! Who may do what to a plan: the one permission matrix.
//!
//! | action            | viewer | collaborator | owner |
//! |-------------------|:------:|:------------:|:-----:|
//! | see the plan      |   x    |      x       |   x   |
//! | list its members  |   x    |      x       |   x   |
//! | add scenarios     |        |      x       |   x   |
//! | change the plan   |        |              |   x   |
//! | delete the plan   |        |              |   x   |
//! | manage members    |        |              |   x   |
//!
//! Someone with no role learns nothing: the plan answers 404 as if it did not exist.
//! A role is the creator's, or a `plan_members` row, written only when an invitation is
//! accepted (`planning::invitations`): an invited person whose invitation is pending,
//! declined or revoked has no role.

use serde::{Deserialize, Serialize};

/// A role on a plan (ordered: each includes the ones before).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the plan and its scenarios.
    Viewer,
    /// Also adds scenarios.
    Collaborator,
    /// Everything, including members.
    Owner,
}

impl Role {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Collaborator => "collaborator",
            Self::Owner => "owner",
        }
    }

    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "collaborator" => Some(Self::Collaborator),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// Something done to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the plan (and its tiles, scores, scenarios).
    View,
    /// List the members.
    ListMembers,
    /// Create a scenario.
    AddScenario,
    /// Rename it or change its geometry.
    Edit,
    /// Delete it.
    Delete,
    /// Invite, change or remove members.
    ManageMembers,
}

/// Whether `role` may do `action`.
pub fn allows(role: Role, action: Action) -> bool {
    match action {
        Action::View | Action::ListMembers => true,
        Action::AddScenario => role >= Role::Collaborator,
        Action::Edit | Action::Delete | Action::ManageMembers => role == Role::Owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix() {
        use Action::*;
        let expect = [
            (View, [true, true, true]),
            (ListMembers, [true, true, true]),
            (AddScenario, [false, true, true]),
            (Edit, [false, false, true]),
            (Delete, [false, false, true]),
            (ManageMembers, [false, false, true]),
        ];
        for (action, allowed) in expect {
            for (role, ok) in [Role::Viewer, Role::Collaborator, Role::Owner]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(allows(role, action), ok, "{role:?} {action:?}");
            }
        }
    }
}
