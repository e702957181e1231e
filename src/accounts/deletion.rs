//! Deleting an account, in one transaction:
//! - a plan the user owns and shares with another owner passes to that co-owner (the
//!   earliest added), whose membership row becomes the plan's owner column;
//! - every other plan the user owns is deleted, with its scenarios, project areas,
//!   scores and memberships (the schema's `ON DELETE CASCADE`), even when viewers or
//!   collaborators had it shared: they never owned it;
//! - the user row is deleted, and with it their sessions, memberships of other plans and
//!   reset tokens; scenarios they made on other people's plans stay, their maker unknown
//!   (`created_by` becomes NULL).
//!
//! Nothing else changes.

use super::AccountError;

/// What deleting an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// Plans deleted with the account.
    pub plans_deleted: u64,
    /// Plans handed to a co-owner.
    pub plans_handed_over: u64,
}

/// Deletes the account `user_id` as the module describes; `None` when there is no such
/// account (deleted meanwhile).
pub async fn delete_account(
    client: &mut deadpool_postgres::Client,
    user_id: i64,
) -> Result<Option<Deleted>, AccountError> {
    let tx = client.transaction().await?;
    // Locks the user row: a concurrent share or plan creation by this user waits.
    let exists = tx
        .query_opt(
            "SELECT 1 FROM planscape.users WHERE id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let plans_handed_over = tx
        .execute(
            "WITH heirs AS ( \
               SELECT DISTINCT ON (m.plan_id) m.plan_id, m.user_id \
               FROM planscape.plan_members m JOIN planscape.plans p ON p.id = m.plan_id \
               WHERE p.owner_id = $1 AND m.role = 'owner' AND m.user_id <> $1 \
               ORDER BY m.plan_id, m.created_at, m.user_id), \
             moved AS ( \
               UPDATE planscape.plans p SET owner_id = h.user_id FROM heirs h \
               WHERE p.id = h.plan_id RETURNING p.id, h.user_id) \
             DELETE FROM planscape.plan_members m USING moved \
             WHERE m.plan_id = moved.id AND m.user_id = moved.user_id",
            &[&user_id],
        )
        .await?;
    let plans_deleted = tx
        .execute(
            "DELETE FROM planscape.plans WHERE owner_id = $1",
            &[&user_id],
        )
        .await?;
    tx.execute("DELETE FROM planscape.users WHERE id = $1", &[&user_id])
        .await?;
    tx.commit().await?;
    Ok(Some(Deleted {
        plans_deleted,
        plans_handed_over,
    }))
}
