//! Plans and members in PostGIS. Geometry checks PostGIS makes (validity, inside
//! California, area) run before any write; each write is one statement or one
//! transaction, so a refused request changes nothing.

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::accounts::access::Role;
use crate::db::DbError;
use crate::planning::units::M2_PER_ACRE;

/// Limits on plan geometries.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest area, acres.
    pub max_area_acres: f64,
    /// Smallest area, acres.
    pub min_area_acres: f64,
    /// Most vertices.
    pub max_vertices: usize,
}

/// A plan failure, mapped to HTTP in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A field is unacceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// No such plan (or not visible to this user).
    #[error("no such plan")]
    NotFound,
    /// Visible, but the role does not allow it.
    #[error("your role on this plan does not allow this")]
    Forbidden,
    /// The member does not exist.
    #[error("no such member")]
    NoMember,
    /// No such pending invitation (or not addressed to, or sent by, this user).
    #[error("no such invitation")]
    NoInvitation,
    /// The inviter has sent as many invitations as allowed for now.
    #[error("{message}")]
    TooManyInvitations {
        /// Seconds until one more is allowed.
        retry_after_s: u64,
        /// What was limited.
        message: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbError),
}

impl From<tokio_postgres::Error> for PlanError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e.into())
    }
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        field,
        message: message.into(),
    }
}

/// A plan as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Plan {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Region slug.
    pub region: String,
    /// Area in acres (EPSG:5070, equal-area).
    pub area_acres: f64,
    /// The caller's role.
    pub role: Role,
    /// Owner (creator) id.
    pub owner_id: i64,
    /// Owner's name.
    pub owner_name: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// GeoJSON MultiPolygon (EPSG:4326); omitted in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub geometry: Option<Value>,
}

/// A planning region.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Region {
    /// Slug (used in plans).
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// A member of a plan, or (for owners) an invitation not yet answered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    /// User id (null for a pending invitation: who has the email is not told).
    pub user_id: Option<i64>,
    /// Email.
    pub email: String,
    /// Name (null for a pending invitation).
    pub name: Option<String>,
    /// Role (offered, for a pending invitation).
    pub role: Role,
    /// `active` for a member, `pending` for an invitation not yet answered.
    pub status: MemberStatus,
    /// The invitation's id (pending only; `DELETE /plans/{id}/invitations/{invitation_id}`
    /// revokes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<i64>,
}

/// Whether a [`Member`] has access or is only invited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Accepted: has the role.
    Active,
    /// Invited, not yet accepted: no access.
    Pending,
}

/// Decimal places of stored and returned plan coordinates (1e-7 degrees, about 1 cm).
/// A plan is stored exactly as the GeoJSON it is returned as would be read back, so
/// what `GET` returns, `PATCH` and `POST` accept unchanged and store unchanged.
pub const DECIMALS: i32 = 7;

/// Checks a bare GeoJSON geometry with PostGIS: not empty, valid, inside California,
/// within the area limits; then rounds it to [`DECIMALS`] places (through GeoJSON text,
/// as it will be returned) and checks the rounded shape again, since rounding can
/// collapse a tiny ring or make a ring cross itself or another. When plain rounding
/// gives an invalid shape, the shape is snap-rounded to the same grid instead
/// (`ST_ReducePrecision`, which keeps it valid, polygons kept). Returns the GeoJSON text to store and its area in acres.
pub async fn check_geometry(
    client: &impl GenericClient,
    geojson: &str,
    limits: &Limits,
) -> Result<(String, f64), PlanError> {
    let row = client
        .query_one(
            "WITH g AS (SELECT ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326))) AS geom) \
             SELECT ST_IsEmpty(geom), ST_IsValid(geom), ST_IsValidReason(geom), \
                    ST_CoveredBy(geom, (SELECT geom FROM planscape.boundaries WHERE name = 'california')), \
                    ST_Area(ST_Transform(geom, 5070)), ST_AsGeoJSON(geom, $2) FROM g",
            &[&geojson, &DECIMALS],
        )
        .await
        .map_err(|e| match e.as_db_error() {
            // PostGIS rejects what it cannot parse: the input's fault.
            Some(db) => invalid("geometry", db.message().to_owned()),
            None => PlanError::from(e),
        })?;
    let (empty, valid, reason, inside): (bool, bool, String, Option<bool>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if empty {
        return Err(invalid("geometry", "is empty"));
    }
    if !valid {
        return Err(invalid("geometry", format!("is not valid: {reason}")));
    }
    if inside != Some(true) {
        return Err(invalid("geometry", "must lie inside California"));
    }
    check_area(row.get::<_, f64>(4) / M2_PER_ACRE, limits)?;
    let rounded: String = row.get(5);
    let (stored, acres) = match stored_form(client, &rounded).await? {
        Some(ok) => ok,
        None => {
            // Snap rounding to the same grid, which keeps the shape valid.
            let repaired: Option<String> = client
                .query_one(
                    "SELECT ST_AsGeoJSON(ST_Multi(ST_CollectionExtract(ST_ReducePrecision( \
                       ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)), $3), 3)), $2)",
                    &[&geojson, &DECIMALS, &10f64.powi(-DECIMALS)],
                )
                .await?
                .get(0);
            match repaired {
                Some(text) => stored_form(client, &text).await?.ok_or_else(|| {
                    invalid(
                        "geometry",
                        "is not valid once rounded to 7 decimal places (about 1 cm)",
                    )
                })?,
                None => return Err(invalid("geometry", "is empty once rounded")),
            }
        }
    };
    check_area(acres, limits)?;
    Ok((stored, acres))
}

/// The rounded GeoJSON text and its acres when PostGIS finds it a valid, non-empty
/// shape inside California, read back exactly as it will be stored.
async fn stored_form(
    client: &impl GenericClient,
    rounded: &str,
) -> Result<Option<(String, f64)>, PlanError> {
    let row = client
        .query_one(
            "WITH g AS (SELECT ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)) AS geom) \
             SELECT NOT ST_IsEmpty(geom) AND ST_IsValid(geom) \
                      AND ST_CoveredBy(geom, (SELECT geom FROM planscape.boundaries WHERE name = 'california')), \
                    ST_Area(ST_Transform(geom, 5070)) FROM g",
            &[&rounded],
        )
        .await?;
    Ok(row
        .get::<_, Option<bool>>(0)
        .unwrap_or(false)
        .then(|| (rounded.to_owned(), row.get::<_, f64>(1) / M2_PER_ACRE)))
}

/// Refuses an area outside `[plan_min_area_acres, plan_max_area_acres]`.
fn check_area(acres: f64, limits: &Limits) -> Result<(), PlanError> {
    if acres > limits.max_area_acres {
        return Err(invalid(
            "geometry",
            format!(
                "covers {acres:.0} acres, more than the limit of {:.0}",
                limits.max_area_acres
            ),
        ));
    }
    if acres <= 0.0 {
        return Err(invalid("geometry", "has no area"));
    }
    if acres < limits.min_area_acres {
        return Err(invalid(
            "geometry",
            format!(
                "covers {acres:.4} acres, less than the minimum of {} acres",
                limits.min_area_acres
            ),
        ));
    }
    Ok(())
}

/// Checks a plan's geometry as given (a Polygon or MultiPolygon, bare or in a Feature or
/// a FeatureCollection of one) fully: its shape and size here, the rest with
/// [`check_geometry`]. Returns the GeoJSON text to store (rounded) and its acres.
pub async fn check_input_geometry(
    client: &impl GenericClient,
    input: &Value,
    limits: &Limits,
) -> Result<(String, f64), PlanError> {
    let (geometry, _) = super::geometry::extract(input, limits.max_vertices)
        .map_err(|e| invalid("geometry", e.to_string()))?;
    check_geometry(client, &geometry.to_string(), limits).await
}

/// Checks a bare GeoJSON geometry that is not stored as a plan (a statistics area, a
/// scenario's excluded areas) with PostGIS: parsable, not empty, valid. `field` names
/// it in the error.
pub async fn check_shape(
    client: &impl GenericClient,
    geojson: &str,
    field: &'static str,
) -> Result<(), PlanError> {
    let row = client
        .query_one(
            "WITH g AS (SELECT ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)) AS geom) \
             SELECT ST_IsEmpty(geom), ST_IsValid(geom), ST_IsValidReason(geom) FROM g",
            &[&geojson],
        )
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => invalid(field, db.message().to_owned()),
            None => PlanError::from(e),
        })?;
    let (empty, valid, reason): (bool, bool, String) = (row.get(0), row.get(1), row.get(2));
    if empty {
        return Err(invalid(field, "is empty"));
    }
    if !valid {
        return Err(invalid(field, format!("is not valid: {reason}")));
    }
    Ok(())
}

/// The planning regions' slugs, as the migrations insert them (`planscape.regions`);
/// the OpenAPI document lists them, and a test checks them against `GET /regions`.
pub const REGION_SLUGS: [&str; 4] = [
    "central_coast",
    "northern_california",
    "sierra_nevada",
    "southern_california",
];

/// Checks that a region exists.
pub async fn check_region(client: &impl GenericClient, region: &str) -> Result<(), PlanError> {
    let found = if region.chars().any(char::is_control) || region.len() > 100 {
        None
    } else {
        client
            .query_opt(
                "SELECT 1 FROM planscape.regions WHERE slug = $1",
                &[&region],
            )
            .await?
    };
    if found.is_none() {
        let known: Vec<String> = client
            .query("SELECT slug FROM planscape.regions ORDER BY slug", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        return Err(invalid(
            "region",
            format!("unknown region (one of: {})", known.join(", ")),
        ));
    }
    Ok(())
}

/// The planning regions, by name.
pub async fn regions(client: &impl GenericClient) -> Result<Vec<Region>, PlanError> {
    let rows = client
        .query(
            "SELECT slug, name FROM planscape.regions ORDER BY name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Region {
            slug: r.get(0),
            name: r.get(1),
        })
        .collect())
}

/// Checks a plan name.
pub fn check_name(name: &str) -> Result<String, PlanError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "must be 1 to 200 characters, without control characters",
        ));
    }
    Ok(name.to_owned())
}

const PLAN_COLUMNS: &str = "p.id, p.name, p.region, p.area_acres, p.owner_id, u.name AS owner_name, \
    to_json(p.created_at)#>>'{}' AS created_at, to_json(p.updated_at)#>>'{}' AS updated_at";

/// The role of `user` on plan `plan_id`, with the plan; `None` when the plan does not
/// exist or the user has no role (indistinguishable on purpose).
const ROLE_SQL: &str = "CASE WHEN p.owner_id = $2 THEN 'owner' ELSE m.role END";

fn plan_from(row: &tokio_postgres::Row, with_geometry: bool) -> Option<Plan> {
    let role: Option<String> = row.get("role");
    let geometry = if with_geometry {
        let text: String = row.get("geometry");
        serde_json::from_str(&text).ok()
    } else {
        None
    };
    Some(Plan {
        id: row.get("id"),
        name: row.get("name"),
        region: row.get("region"),
        area_acres: row.get("area_acres"),
        role: Role::parse(role.as_deref()?)?,
        owner_id: row.get("owner_id"),
        owner_name: row.get("owner_name"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        geometry,
    })
}

/// A plan with its geometry, as `user` sees it.
pub async fn get(
    client: &impl GenericClient,
    plan_id: i64,
    user: i64,
) -> Result<Option<Plan>, PlanError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {PLAN_COLUMNS}, {ROLE_SQL} AS role, ST_AsGeoJSON(p.geom, {DECIMALS}) AS geometry \
                 FROM planscape.plans p JOIN planscape.users u ON u.id = p.owner_id \
                 LEFT JOIN planscape.plan_members m ON m.plan_id = p.id AND m.user_id = $2 \
                 WHERE p.id = $1"
            ),
            &[&plan_id, &user],
        )
        .await?;
    Ok(row.as_ref().and_then(|r| plan_from(r, true)))
}

/// The plan if `user` may do `action` on it: `NotFound` without a role, `Forbidden`
/// with one that does not allow it.
pub async fn authorize(
    client: &impl GenericClient,
    plan_id: i64,
    user: i64,
    action: crate::accounts::access::Action,
) -> Result<Plan, PlanError> {
    let plan = get(client, plan_id, user)
        .await?
        .ok_or(PlanError::NotFound)?;
    if crate::accounts::access::allows(plan.role, action) {
        Ok(plan)
    } else {
        Err(PlanError::Forbidden)
    }
}

/// Plans `user` owns or is a member of, newest first, without geometries.
pub async fn list(client: &impl GenericClient, user: i64) -> Result<Vec<Plan>, PlanError> {
    let rows = client
        .query(
            &format!(
                "SELECT {PLAN_COLUMNS}, {ROLE_SQL} AS role \
                 FROM planscape.plans p JOIN planscape.users u ON u.id = p.owner_id \
                 LEFT JOIN planscape.plan_members m ON m.plan_id = p.id AND m.user_id = $1 \
                 WHERE p.owner_id = $1 OR m.user_id IS NOT NULL \
                 ORDER BY p.updated_at DESC, p.id DESC",
            )
            .replace("$2", "$1"),
            &[&user],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| plan_from(r, false)).collect())
}

/// Creates a plan (the geometry already checked).
pub async fn create(
    client: &impl GenericClient,
    owner: i64,
    name: &str,
    region: &str,
    geojson: &str,
    area_acres: f64,
) -> Result<i64, PlanError> {
    let row = client
        .query_one(
            "INSERT INTO planscape.plans (owner_id, name, region, geom, area_acres) \
             VALUES ($1, $2, $3, ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON($4), 4326))), $5) RETURNING id",
            &[&owner, &name, &region, &geojson, &area_acres],
        )
        .await?;
    Ok(row.get(0))
}

/// Renames a plan and/or replaces its geometry (already checked).
pub async fn update(
    client: &impl GenericClient,
    plan_id: i64,
    name: Option<&str>,
    geometry: Option<(&str, f64)>,
) -> Result<(), PlanError> {
    // Nothing asked, nothing changed (not even `updated_at`).
    if name.is_none() && geometry.is_none() {
        return Ok(());
    }
    let (geojson, acres) = match geometry {
        Some((g, a)) => (Some(g), Some(a)),
        None => (None, None),
    };
    client
        .execute(
            "UPDATE planscape.plans SET name = coalesce($2, name), \
               geom = coalesce(ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON($3), 4326))), geom), \
               area_acres = coalesce($4, area_acres), updated_at = now() WHERE id = $1",
            &[&plan_id, &name, &geojson, &acres],
        )
        .await?;
    Ok(())
}

/// Deletes a plan (members go with it).
pub async fn delete(client: &impl GenericClient, plan_id: i64) -> Result<(), PlanError> {
    client
        .execute("DELETE FROM planscape.plans WHERE id = $1", &[&plan_id])
        .await?;
    Ok(())
}

/// The owner and the members of a plan.
pub async fn members(client: &impl GenericClient, plan_id: i64) -> Result<Vec<Member>, PlanError> {
    let rows = client
        .query(
            "SELECT u.id, u.email, u.name, 'owner' AS role, 0 AS ord FROM planscape.plans p \
               JOIN planscape.users u ON u.id = p.owner_id WHERE p.id = $1 \
             UNION ALL \
             SELECT u.id, u.email, u.name, m.role, 1 FROM planscape.plan_members m \
               JOIN planscape.users u ON u.id = m.user_id WHERE m.plan_id = $1 \
             ORDER BY ord, name, id",
            &[&plan_id],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(Member {
                user_id: Some(r.get(0)),
                email: r.get(1),
                name: Some(r.get(2)),
                role: Role::parse(r.get::<_, &str>(3))?,
                status: MemberStatus::Active,
                invitation_id: None,
            })
        })
        .collect())
}

/// Changes a member's role.
pub async fn set_member_role(
    client: &impl GenericClient,
    plan_id: i64,
    user_id: i64,
    role: Role,
) -> Result<(), PlanError> {
    let n = client
        .execute(
            "UPDATE planscape.plan_members SET role = $3 WHERE plan_id = $1 AND user_id = $2",
            &[&plan_id, &user_id, &role.as_str()],
        )
        .await?;
    if n == 0 {
        return Err(PlanError::NoMember);
    }
    Ok(())
}

/// Removes a member.
pub async fn remove_member(
    client: &impl GenericClient,
    plan_id: i64,
    user_id: i64,
) -> Result<(), PlanError> {
    let n = client
        .execute(
            "DELETE FROM planscape.plan_members WHERE plan_id = $1 AND user_id = $2",
            &[&plan_id, &user_id],
        )
        .await?;
    if n == 0 {
        return Err(PlanError::NoMember);
    }
    Ok(())
}
