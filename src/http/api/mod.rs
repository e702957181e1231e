//! The REST API under `/planscape-backend/`: accounts, plans, sharing, and the OpenAPI 3
//! document generated from the handlers' annotations (utoipa), so the document and the
//! router come from the same code.

mod analytics;
mod auth;
mod basemaps;
mod conditions;
mod contract;
mod csv;
mod deletion;
pub mod extract;
mod plans;
pub mod point;
mod recovery;
mod scenarios;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// Where the API is mounted.
pub const PREFIX: &str = "/planscape-backend";

#[derive(OpenApi)]
#[openapi(
    info(title = "Planscape API", description = "Accounts, plans (planning areas) and sharing. \
        Authenticate with the session cookie set by login (browsers; changes then need the \
        `X-Planscape-CSRF` header) or `Authorization: Bearer TOKEN`."),
    servers((url = "/planscape-backend")),
    tags((name = "accounts"), (name = "plans"), (name = "sharing"), (name = "conditions"), (name = "scenarios"), (name = "map"), (name = "analytics")),
    components(schemas(
        crate::accounts::access::Role,
        crate::planning::scenarios::export::ExportFormat,
        crate::http::error::ErrorResponse,
        crate::http::error::ErrorDetail
    ))
)]
struct ApiDoc;

/// Paths that need no session.
const PUBLIC_PATHS: [&str; 9] = [
    "/analytics/pageview",
    "/basemaps",
    "/auth/signup",
    "/auth/login",
    "/auth/reset/request",
    "/auth/reset",
    "/regions",
    "/conditions",
    "/conditions/{region}/{name}",
];

/// Declares the two ways to authenticate (a bearer token, or the session cookie with
/// the CSRF header on changes) and requires one of them on every other operation.
fn document_security(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The `token` of a login or sign-up response: `Authorization: Bearer TOKEN`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::accounts::session::COOKIE,
            "The HttpOnly cookie set by login (browsers); requests that change state also \
             need the `X-Planscape-CSRF` header and a same-origin `Origin`.",
        ))),
    );
    let either = vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("session_cookie", Vec::<String>::new()),
    ];
    for (path, item) in doc.paths.paths.iter_mut() {
        if PUBLIC_PATHS.contains(&path.as_str()) {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.security = Some(either.clone());
        }
    }
}

/// Operations served beside the tiles, outside [`PREFIX`].
#[derive(OpenApi)]
#[openapi(paths(point::point))]
struct TileDoc;

/// Adds the operations served under `/tiles/` to the document, each with its own
/// server (`/`), since the document's server is the API's prefix.
fn document_tile_paths(doc: &mut utoipa::openapi::OpenApi) {
    let mut tiles = TileDoc::openapi();
    for item in tiles.paths.paths.values_mut() {
        item.servers = Some(vec![utoipa::openapi::server::Server::new("/")]);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    if let Some(c) = tiles.components.take() {
        components.schemas.extend(c.schemas);
    }
    doc.paths.paths.extend(tiles.paths.paths);
}

/// The API's router (to nest under [`PREFIX`]) and its OpenAPI document.
pub fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let upload_limit = state.config.accounts.max_upload_kb.saturating_mul(1024);
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(recovery::request_reset))
        .routes(routes!(recovery::reset_password))
        .routes(routes!(deletion::delete_account))
        .routes(routes!(plans::regions))
        .routes(routes!(basemaps::list))
        .routes(routes!(plans::list, plans::create))
        .merge(
            // Uploaded files have a limit of their own (checked while the body streams).
            OpenApiRouter::new()
                .routes(routes!(upload::upload))
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .routes(routes!(plans::get, plans::update, plans::delete))
        .routes(routes!(plans::members, plans::invite))
        .routes(routes!(plans::change_role, plans::remove))
        .routes(routes!(plans::revoke))
        .routes(routes!(plans::received))
        .routes(routes!(plans::accept))
        .routes(routes!(plans::decline))
        .routes(routes!(conditions::tree))
        .routes(routes!(conditions::node))
        .routes(routes!(conditions::area_stats))
        .routes(routes!(conditions::plan_scores))
        .routes(routes!(scenarios::create, scenarios::list))
        .routes(routes!(scenarios::get, scenarios::delete))
        .routes(routes!(scenarios::export))
        .routes(routes!(analytics::page_view))
        .routes(routes!(analytics::activity))
        .routes(routes!(analytics::signups))
        .routes(routes!(analytics::plans))
        .routes(routes!(analytics::scenarios))
        .routes(routes!(analytics::tiles))
        .routes(routes!(analytics::conditions))
        .routes(routes!(analytics::plan_cells))
        .routes(routes!(analytics::latency))
        .split_for_parts();
    let mut doc = doc;
    document_security(&mut doc);
    document_tile_paths(&mut doc);
    contract::document_errors(&mut doc);
    contract::document_constraints(&mut doc, state.conditions.as_deref());
    contract::document_closed_bodies(&mut doc);
    let document = axum::body::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let limit = state.config.accounts.max_body_kb.saturating_mul(1024);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let body = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        )
        // The document rendered (Swagger UI, built by web/build.mjs into
        // `web_dir/docs`), under the API's prefix so that a proxy of the API serves it too.
        .nest_service(
            "/docs",
            super::web::router(&state.config.web_dir.join("docs")),
        )
        .method_not_allowed_fallback(crate::http::error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
}
