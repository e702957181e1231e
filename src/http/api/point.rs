//! `GET /tiles/{layer}/point?lon=&lat=`: the value of a raster layer under a point,
//! read from the full-resolution pixel the deepest tiles show there. Served beside the
//! tiles (`/tiles/...`, outside the API's prefix), documented with the API.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::source::Source;
use crate::tile::{MAX_LATITUDE, lonlat_to_mercator};

/// Where to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PointQuery {
    /// Longitude, degrees (-180 to 180).
    #[param(minimum = -180, maximum = 180)]
    pub lon: f64,
    /// Latitude, degrees (within the Web Mercator range, ±85.05).
    #[param(minimum = -85.05112877980659, maximum = 85.05112877980659)]
    pub lat: f64,
}

/// The condition a layer shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointCondition {
    /// Region.
    pub region: String,
    /// Identifier in the catalog.
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// `normalized` (in [-1, 1], higher is better) or `raw` (a metric's own units).
    pub values: &'static str,
}

/// A layer's value at a point.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointValue {
    /// Layer.
    pub layer: String,
    /// Longitude asked.
    pub lon: f64,
    /// Latitude asked.
    pub lat: f64,
    /// The pixel's value.
    pub value: f64,
    /// Units of the value, when the layer declares them.
    pub units: Option<String>,
    /// The legend class holding the value (class styles with labels).
    pub label: Option<String>,
    /// The score band (Poor, Fair, Ok, Good, Excellent) of a normalized condition layer.
    pub band: Option<&'static str>,
    /// The condition the layer shows, when it belongs to the conditions catalog.
    pub condition: Option<PointCondition>,
}

/// The value of a raster layer at a point.
#[utoipa::path(get, path = "/tiles/{layer}/point", tag = "map",
    params(("layer" = String, Path, description = "raster layer"), PointQuery),
    responses(
        (status = 200, body = PointValue),
        (status = 400, description = "missing or invalid lon/lat"),
        (status = 404, description = "no such raster layer"),
        (status = 422, description = "no data there (outside the raster, or nodata)")))]
pub async fn point(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PointQuery>, QueryRejection>,
) -> Result<Json<PointValue>, ApiError> {
    let Path(name) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{}: give lon and lat in degrees", e.body_text()),
        )
    })?;
    if !(q.lon.is_finite() && q.lon.abs() <= 180.0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "lon must be between -180 and 180",
        ));
    }
    if !(q.lat.is_finite() && q.lat.abs() <= MAX_LATITUDE) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("lat must be between -{MAX_LATITUDE} and {MAX_LATITUDE}"),
        ));
    }
    let source = state.tiles.catalog().find(&name)?.1.source()?;
    let Source::Raster(raster) = source else {
        return Err(ApiError::not_found(format!(
            "layer `{name}` is a vector layer: it has no values to read"
        )));
    };
    let (x, y) = lonlat_to_mercator(q.lon, q.lat);
    let value = raster
        .value_at(x, y)
        .await
        .map_err(|e| ApiError::from(&e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_data",
                format!("layer `{name}` has no data at {:.6}, {:.6}", q.lon, q.lat),
            )
        })?;
    let found = state.conditions.as_deref().and_then(|c| c.by_layer(&name));
    let band = match found {
        Some((_, true)) => Some(crate::planning::stats::band(value)),
        _ => None,
    };
    let units = raster.units.clone().or_else(|| match found {
        Some((node, false)) => node.metric.as_ref().and_then(|m| m.data_units.clone()),
        _ => None,
    });
    Ok(Json(PointValue {
        layer: name.clone(),
        lon: q.lon,
        lat: q.lat,
        value,
        units,
        label: raster.colormap.class_label(value).map(str::to_owned),
        band,
        condition: found.map(|(node, normalized)| PointCondition {
            region: node.region.clone(),
            name: node.name.clone(),
            display_name: node.display_name.clone(),
            values: if normalized { "normalized" } else { "raw" },
        }),
    }))
}
