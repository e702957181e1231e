//! Plans from uploaded files: `POST /plans/upload` (multipart/form-data with `name`,
//! `region` and `file`). The file is read by [`crate::planning::upload`] on a blocking
//! thread, then checked and stored exactly as a drawn plan.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

use super::extract::Auth;
use super::plans::limits;
use crate::analytics::{Event, EventKind};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::plans::{self, Plan};
use crate::planning::upload;

/// The upload form (multipart/form-data).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PlanUpload {
    /// Name.
    pub name: String,
    /// Region slug (`GET /regions`).
    pub region: String,
    /// The planning area: GeoJSON (`.geojson`, `.json`; longitude, latitude unless it
    /// names another CRS) or a zipped Shapefile (`.zip` with `.shp`, `.shx`, `.dbf`,
    /// `.prj`; any CRS). All its polygons are unioned into one area.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The largest text field of the form, bytes.
const MAX_TEXT_FIELD: usize = 4096;

fn multipart_error(e: &MultipartError) -> ApiError {
    ApiError::body_rejection(e.status(), e.body_text())
}

/// The form's fields, read to their end.
struct Form {
    name: Option<String>,
    region: Option<String>,
    file: Option<(Vec<u8>, Option<String>)>,
}

async fn read_form(mut multipart: Multipart) -> Result<Form, ApiError> {
    let mut form = Form {
        name: None,
        region: None,
        file: None,
    };
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let key = field.name().unwrap_or("").to_owned();
        let twice = || ApiError::invalid_field(&key, "is given twice");
        match key.as_str() {
            "name" | "region" => {
                let bytes = field.bytes().await.map_err(|e| multipart_error(&e))?;
                if bytes.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::invalid_field(&key, "is too long"));
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::invalid_field(&key, "is not UTF-8 text"))?;
                let slot = if key == "name" {
                    &mut form.name
                } else {
                    &mut form.region
                };
                if slot.replace(text).is_some() {
                    return Err(twice());
                }
            }
            "file" => {
                let file_name = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|e| multipart_error(&e))?;
                if form.file.replace((bytes.to_vec(), file_name)).is_some() {
                    return Err(twice());
                }
            }
            _ => {
                return Err(ApiError::invalid_field(
                    &key,
                    "unknown field (expected name, region, file)",
                ));
            }
        }
    }
    Ok(form)
}

/// Creates a plan owned by the user from an uploaded file: GeoJSON or a zipped
/// Shapefile in any CRS, reprojected to EPSG:4326, its polygons unioned, then checked
/// as a drawn plan.
#[utoipa::path(post, path = "/plans/upload", operation_id = "upload_plan", tag = "plans",
    request_body(content = PlanUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Plan), (status = 400, description = "not a multipart body"),
              (status = 401, description = "not signed in"),
              (status = 408, description = "the body did not arrive within `http.body_read_timeout_s`"),
              (status = 413, description = "upload too large (`accounts.max_upload_kb`)"),
              (status = 415, description = "not multipart/form-data"),
              (status = 422, description = "invalid field; `file` when the file is unreadable, has no CRS, holds no polygons or other geometries, is invalid, outside California or too large an area")))]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart = multipart.map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as multipart/form-data (name, region, file)",
        )
    })?;
    let limit = state.config.http.body_read_timeout_s;
    let form = tokio::time::timeout(Duration::from_secs(limit), read_form(multipart))
        .await
        .map_err(|_| ApiError::body_timeout(limit))??;
    let missing = |field: &str| ApiError::invalid_field(field, "is required");
    let name = plans::check_name(&form.name.ok_or_else(|| missing("name"))?)?;
    let region = form.region.ok_or_else(|| missing("region"))?;
    let (bytes, file_name) = form.file.ok_or_else(|| missing(upload::FIELD))?;

    // GDAL reads before a pooled connection is taken. What a zip may expand to: ten
    // times the upload limit.
    let max_unzipped = (state.config.accounts.max_upload_kb as u64).saturating_mul(10 * 1024);
    let geometry = crate::raster_threads::run(move || {
        upload::read_upload(bytes, file_name.as_deref(), max_unzipped)
    })
    .await
    .map_err(ApiError::internal)?;
    let client = state.db().await?;
    plans::check_region(&**client, &region).await?;
    let geometry = geometry?;
    let (geojson, acres) = upload::check_uploaded(&**client, &geometry, &limits(&state)).await?;
    let id = plans::create(&**client, auth.user.id, &name, &region, &geojson, acres).await?;
    let plan = plans::get(&**client, id, auth.user.id)
        .await?
        .ok_or_else(|| ApiError::internal("created plan vanished"))?;
    state.analytics.record(
        Event::new(EventKind::PlanCreated, Some(auth.user.id))
            .plan(id)
            .detail("uploaded"),
    );
    Ok((StatusCode::CREATED, Json(plan)).into_response())
}
