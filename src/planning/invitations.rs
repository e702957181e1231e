//! Sharing by invitation. An owner invites an email with a role; the answer is the same
//! whether or not an account has that email (nothing about accounts is told). The person
//! with the email, now or once they sign up, sees the invitation (plan name, inviter's
//! name) and accepts or declines it; only acceptance writes the `plan_members` row that
//! grants the role, so a pending invitation gives no access anywhere. Owners see pending
//! invitations beside the members and may revoke them. Each inviter has at most
//! [`InviteLimits::max_pending`] pending invitations and sends at most
//! [`InviteLimits::per_hour`] an hour, counted in the database (so across servers).

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::plans::{Member, MemberStatus, Plan, PlanError, invalid};
use crate::accounts::access::Role;

/// Limits on one user's invitations.
#[derive(Debug, Clone, Copy)]
pub struct InviteLimits {
    /// Most pending invitations sent by one user.
    pub max_pending: u32,
    /// Most invitations sent by one user in an hour.
    pub per_hour: u32,
}

/// An invitation as its sender sees it (the same whether or not the email has an account).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SentInvitation {
    /// Id.
    pub id: i64,
    /// The plan.
    pub plan_id: i64,
    /// The invited email (lower case).
    pub email: String,
    /// The role offered.
    pub role: Role,
    /// Always `pending` when sent.
    pub status: MemberStatus,
    /// When it was sent (RFC 3339).
    pub created_at: String,
}

/// An invitation as the invited user sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReceivedInvitation {
    /// Id (to accept or decline).
    pub id: i64,
    /// The plan.
    pub plan_id: i64,
    /// The plan's name.
    pub plan_name: String,
    /// The plan's region slug.
    pub region: String,
    /// Who invited.
    pub inviter_name: String,
    /// The role offered.
    pub role: Role,
    /// When it was sent (RFC 3339).
    pub created_at: String,
}

/// Invites `email` to `plan` with `role` (the caller, `inviter`, already authorized as an
/// owner). A second invitation of the same email to the same plan while one is pending
/// changes its role and is not counted again. Runs in one transaction that holds a lock
/// per inviter, so parallel requests cannot slip past the limits.
pub async fn invite(
    client: &mut deadpool_postgres::Client,
    plan: &Plan,
    inviter: i64,
    email: &str,
    role: Role,
    limits: InviteLimits,
) -> Result<SentInvitation, PlanError> {
    let email = crate::accounts::normalize_email(email)
        .map_err(|_| invalid("email", "is not an email address"))?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('planscape.invitations'), ($1::bigint % 2147483647)::int)",
        &[&inviter],
    )
    .await?;
    // Members (and the creator) are listed to every member already: telling that one
    // of them is already a member reveals nothing.
    let member = tx
        .query_opt(
            "SELECT p.owner_id = u.id FROM planscape.users u \
             JOIN planscape.plans p ON p.id = $1 \
             LEFT JOIN planscape.plan_members m ON m.plan_id = p.id AND m.user_id = u.id \
             WHERE u.email = $2 AND (p.owner_id = u.id OR m.user_id IS NOT NULL)",
            &[&plan.id, &email],
        )
        .await?;
    match member.map(|r| r.get::<_, bool>(0)) {
        Some(true) => {
            return Err(invalid("email", "the plan's creator is always its owner"));
        }
        Some(false) => {
            return Err(invalid(
                "email",
                "is already a member of this plan (change their role instead)",
            ));
        }
        None => {}
    }
    const COLUMNS: &str = "id, plan_id, email, role, to_json(created_at)#>>'{}' AS created_at";
    let pending = tx
        .query_opt(
            &format!(
                "UPDATE planscape.plan_invitations SET role = $3 \
                 WHERE plan_id = $1 AND email = $2 AND status = 'pending' RETURNING {COLUMNS}"
            ),
            &[&plan.id, &email, &role.as_str()],
        )
        .await?;
    let row = match pending {
        Some(row) => row,
        None => {
            check_limits(&*tx, inviter, limits).await?;
            tx.query_one(
                &format!(
                    "INSERT INTO planscape.plan_invitations (plan_id, inviter_id, email, role) \
                     VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
                ),
                &[&plan.id, &inviter, &email, &role.as_str()],
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(SentInvitation {
        id: row.get("id"),
        plan_id: row.get("plan_id"),
        email: row.get("email"),
        role,
        status: MemberStatus::Pending,
        created_at: row.get("created_at"),
    })
}

/// Refuses one more invitation past the inviter's limits, with the wait until the
/// hourly one frees a place.
async fn check_limits(
    client: &impl GenericClient,
    inviter: i64,
    limits: InviteLimits,
) -> Result<(), PlanError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'pending'), \
                    count(*) FILTER (WHERE created_at > now() - interval '1 hour'), \
                    ceil(extract(epoch FROM min(created_at) FILTER (WHERE created_at > now() - interval '1 hour') \
                                        + interval '1 hour' - now()))::bigint \
             FROM planscape.plan_invitations WHERE inviter_id = $1",
            &[&inviter],
        )
        .await?;
    let (pending, last_hour, wait): (i64, i64, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    if pending >= i64::from(limits.max_pending) {
        return Err(PlanError::TooManyInvitations {
            retry_after_s: 3600,
            message: format!(
                "you have {pending} invitations waiting for an answer, the most allowed; \
                 revoke some or wait for answers"
            ),
        });
    }
    if last_hour >= i64::from(limits.per_hour) {
        return Err(PlanError::TooManyInvitations {
            retry_after_s: wait.unwrap_or(3600).clamp(1, 3600).unsigned_abs(),
            message: format!(
                "you have sent {last_hour} invitations in the last hour, the most allowed; \
                 try again later"
            ),
        });
    }
    Ok(())
}

/// A plan's pending invitations, as rows of its members list (for owners).
pub async fn pending_for_plan(
    client: &impl GenericClient,
    plan_id: i64,
) -> Result<Vec<Member>, PlanError> {
    let rows = client
        .query(
            "SELECT id, email, role FROM planscape.plan_invitations \
             WHERE plan_id = $1 AND status = 'pending' ORDER BY created_at, id",
            &[&plan_id],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(Member {
                user_id: None,
                email: r.get(1),
                name: None,
                role: Role::parse(r.get::<_, &str>(2))?,
                status: MemberStatus::Pending,
                invitation_id: Some(r.get(0)),
            })
        })
        .collect())
}

/// Revokes a pending invitation of `plan_id` (the caller authorized as an owner).
pub async fn revoke(
    client: &impl GenericClient,
    plan_id: i64,
    invitation_id: i64,
) -> Result<(), PlanError> {
    let n = client
        .execute(
            "UPDATE planscape.plan_invitations SET status = 'revoked', answered_at = now() \
             WHERE id = $1 AND plan_id = $2 AND status = 'pending'",
            &[&invitation_id, &plan_id],
        )
        .await?;
    if n == 0 {
        return Err(PlanError::NoInvitation);
    }
    Ok(())
}

/// The pending invitations addressed to `email` (the signed-in user's), newest first.
pub async fn received(
    client: &impl GenericClient,
    email: &str,
) -> Result<Vec<ReceivedInvitation>, PlanError> {
    let rows = client
        .query(
            "SELECT i.id, i.plan_id, p.name, p.region, u.name, i.role, \
                    to_json(i.created_at)#>>'{}' \
             FROM planscape.plan_invitations i \
             JOIN planscape.plans p ON p.id = i.plan_id \
             JOIN planscape.users u ON u.id = i.inviter_id \
             WHERE i.email = $1 AND i.status = 'pending' ORDER BY i.created_at DESC, i.id DESC",
            &[&email],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(ReceivedInvitation {
                id: r.get(0),
                plan_id: r.get(1),
                plan_name: r.get(2),
                region: r.get(3),
                inviter_name: r.get(4),
                role: Role::parse(r.get::<_, &str>(5))?,
                created_at: r.get(6),
            })
        })
        .collect())
}

/// Accepts a pending invitation addressed to the user (`user_id`, `email`): the user
/// becomes a member with the offered role (or gets that role, when already one), in one
/// transaction. Returns the plan's id. Someone else's invitation is `NoInvitation`.
pub async fn accept(
    client: &mut deadpool_postgres::Client,
    invitation_id: i64,
    user_id: i64,
    email: &str,
) -> Result<i64, PlanError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE planscape.plan_invitations SET status = 'accepted', answered_at = now() \
             WHERE id = $1 AND email = $2 AND status = 'pending' RETURNING plan_id, role",
            &[&invitation_id, &email],
        )
        .await?
        .ok_or(PlanError::NoInvitation)?;
    let (plan_id, role): (i64, String) = (row.get(0), row.get(1));
    // The creator is an owner already; nobody else has a role yet or gets this one.
    tx.execute(
        "INSERT INTO planscape.plan_members (plan_id, user_id, role) \
         SELECT $1, $2, $3 FROM planscape.plans WHERE id = $1 AND owner_id <> $2 \
         ON CONFLICT (plan_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        &[&plan_id, &user_id, &role],
    )
    .await?;
    tx.commit().await?;
    Ok(plan_id)
}

/// Declines a pending invitation addressed to `email`; it gives nothing and leaves the
/// lists (the inviter may invite again, within their limits).
pub async fn decline(
    client: &impl GenericClient,
    invitation_id: i64,
    email: &str,
) -> Result<(), PlanError> {
    let n = client
        .execute(
            "UPDATE planscape.plan_invitations SET status = 'declined', answered_at = now() \
             WHERE id = $1 AND email = $2 AND status = 'pending'",
            &[&invitation_id, &email],
        )
        .await?;
    if n == 0 {
        return Err(PlanError::NoInvitation);
    }
    Ok(())
}
