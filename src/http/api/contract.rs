//! What the OpenAPI document states beyond the handlers' own annotations, added to every
//! operation programmatically so that new operations get it too: the errors any
//! operation of its kind may answer (each with the one error body, [`ErrorResponse`]),
//! and the constraints the server enforces on text fields (lengths and patterns), so
//! that a request valid by the document is not refused for an unstated reason.

use std::collections::BTreeSet;

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{AdditionalProperties, Object, Schema, SchemaType, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

#[cfg(doc)]
use crate::http::error::ErrorResponse;
use crate::planning::conditions::Conditions;

/// Paths whose handlers never reach the database (no 503 from it).
const NO_DATABASE: [&str; 3] = ["/basemaps", "/conditions", "/conditions/{region}/{name}"];

/// A character class body of the control characters Rust's `char::is_control` names
/// (Unicode category Cc), which no name or email may hold.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

/// The operations of a path item with their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("post", &mut item.post),
        ("put", &mut item.put),
        ("patch", &mut item.patch),
        ("delete", &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

/// Adds the errors every operation of a kind may answer, where the handler's annotation
/// does not already state them: 400/408/413/415/422 for a JSON body (`JsonBody`), 401 for a
/// secured operation and 403 for its changes (a cookie session without the CSRF header
/// or from another origin), 404 for a path naming a resource, 503 when the database is
/// away. Then gives every 4xx and 5xx response the error body. Run after
/// `document_security` (it reads which operations are secured).
pub fn document_errors(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let names_resource = path.contains('{');
        let uses_database = !NO_DATABASE.contains(&path.as_str());
        for (method, op) in operations(item) {
            let json_body = op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.contains_key("application/json"));
            let secured = op.security.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(Response::new(description)));
            };
            if json_body {
                add("400", "the body is not valid JSON");
                add(
                    "408",
                    "the body did not arrive within `http.body_read_timeout_s`",
                );
                add(
                    "413",
                    "the body is larger than allowed (`accounts.max_body_kb`)",
                );
                add("415", "the body is not sent as `application/json`");
                add(
                    "422",
                    "a field is missing, unknown or does not fit (named in `error.field`)",
                );
            }
            if secured {
                add(
                    "401",
                    "not signed in (no, an unknown or an expired session)",
                );
                if method != "get" {
                    add(
                        "403",
                        "a cookie session without the `X-Planscape-CSRF` header, or from another origin",
                    );
                }
            }
            if names_resource {
                add("404", "the path names nothing (or nothing visible to you)");
            }
            if uses_database {
                add(
                    "503",
                    "the database is unavailable or slow; try again (`Retry-After`)",
                );
            }
            for (status, response) in responses.iter_mut() {
                let error = status.starts_with('4') || status.starts_with('5');
                if let (true, RefOr::T(response)) = (error, response) {
                    response
                        .content
                        .entry("application/json".to_owned())
                        .or_insert_with(|| {
                            Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorResponse"))))
                        });
                }
            }
        }
    }
}

/// How a text field is checked by the server.
struct Text {
    /// Fewest characters.
    min: usize,
    /// Most characters.
    max: usize,
    /// A pattern the whole value matches (ECMA-262, as JSON Schema has it).
    pattern: Option<String>,
}

/// Names (of users, plans and scenarios): 1 to 200 characters, no control characters,
/// not only white space (`plans::check_name` and its twins trim, then check).
fn name() -> Text {
    Text {
        min: 1,
        max: 200,
        pattern: Some(format!(r"^[^{CONTROL}]*[^\s{CONTROL}][^{CONTROL}]*$")),
    }
}

/// An email address as `accounts::normalize_email` accepts it: one `@`, something
/// before it, a domain with a dot that neither starts nor ends it, no white space or
/// control characters, at most 254 characters.
fn email() -> Text {
    let c = format!(r"[^@\s{CONTROL}]");
    let edge = format!(r"[^@.\s{CONTROL}]");
    Text {
        min: 5,
        max: 254,
        pattern: Some(format!(r"^{c}+@{edge}{c}*\.{c}*{edge}$")),
    }
}

/// A new password (`accounts::password::check_policy`).
fn new_password() -> Text {
    Text {
        min: crate::accounts::password::MIN_LENGTH,
        max: crate::accounts::password::MAX_LENGTH,
        pattern: None,
    }
}

/// A request schema's property, when it is an object schema (not a reference).
fn property<'a>(doc: &'a mut OpenApi, schema: &str, field: &str) -> Option<&'a mut Object> {
    let schema = doc.components.as_mut()?.schemas.get_mut(schema)?;
    let RefOr::T(Schema::Object(object)) = schema else {
        return None;
    };
    match object.properties.get_mut(field)? {
        RefOr::T(Schema::Object(o)) => Some(o),
        _ => None,
    }
}

/// An array property's item schema; its items are stated distinct.
fn distinct_items(array: Option<&mut RefOr<Schema>>) -> Option<&mut Object> {
    let Some(RefOr::T(Schema::Array(array))) = array else {
        return None;
    };
    array.unique_items = true;
    match &mut array.items {
        utoipa::openapi::schema::ArrayItems::RefOrSchema(s) => match s.as_mut() {
            RefOr::T(Schema::Object(o)) => Some(o),
            _ => None,
        },
        utoipa::openapi::schema::ArrayItems::False => None,
    }
}

fn enumerate<T: Into<serde_json::Value>>(
    object: Option<&mut Object>,
    values: impl IntoIterator<Item = T>,
) {
    if let Some(o) = object {
        o.enum_values = Some(values.into_iter().map(Into::into).collect());
    }
}

/// States the constraints the server enforces on request fields: text lengths and
/// patterns, the plan regions (fixed by the migrations), the conditions catalog's
/// regions and condition names (fixed by the configuration), stand sizes, and positive
/// ids in paths. Numeric ranges are on the fields' own annotations.
pub fn document_constraints(doc: &mut OpenApi, conditions: Option<&Conditions>) {
    let fields: [(&str, &str, Text); 11] = [
        ("SignupRequest", "email", email()),
        ("ResetRequest", "email", email()),
        ("ResetForm", "new_password", new_password()),
        ("SignupRequest", "name", name()),
        ("SignupRequest", "password", new_password()),
        ("PasswordRequest", "new_password", new_password()),
        ("NewPlan", "name", name()),
        ("PlanUpload", "name", name()),
        ("PlanChange", "name", name()),
        ("NewMember", "email", email()),
        ("ScenarioConfig", "name", name()),
    ];
    for (schema, field, text) in fields {
        // A field that is gone or not a string would lose its constraint silently: the
        // tests of the document check each one.
        if let Some(object) = property(doc, schema, field).filter(|o| is_string(o)) {
            object.min_length = Some(text.min);
            object.max_length = Some(text.max);
            object.pattern = text.pattern;
        }
    }
    for schema in ["NewPlan", "PlanUpload"] {
        enumerate(
            property(doc, schema, "region"),
            crate::planning::plans::REGION_SLUGS,
        );
    }
    enumerate(
        property(doc, "ScenarioConfig", "stand_size_acres"),
        crate::planning::scenarios::STAND_SIZES,
    );
    if let Some(c) = conditions {
        let regions: Vec<&str> = c.catalog.regions.iter().map(|r| r.name.as_str()).collect();
        let names: BTreeSet<&str> = c.nodes.keys().map(|(_, name)| name.as_str()).collect();
        enumerate(property(doc, "StatsRequest", "region"), regions);
        enumerate(
            property(doc, "Priority", "condition"),
            names.iter().copied(),
        );
        let conditions = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("StatsRequest"))
            .and_then(|s| match s {
                RefOr::T(Schema::Object(o)) => o.properties.get_mut("conditions"),
                _ => None,
            });
        enumerate(distinct_items(conditions), names);
    }
    // Ids are positive (`extract::path_id`).
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations(item) {
            for param in op.parameters.iter_mut().flatten() {
                let is_id = matches!(param.name.as_str(), "id" | "sid" | "user_id");
                if let (true, Some(RefOr::T(Schema::Object(o)))) = (is_id, param.schema.as_mut()) {
                    o.minimum = Some(1.into());
                }
            }
        }
    }
}

/// The name of the component schema a schema refers to.
fn referenced(schema: &RefOr<Schema>) -> Option<String> {
    match schema {
        RefOr::Ref(r) => r.ref_location.rsplit('/').next().map(str::to_owned),
        RefOr::T(Schema::Array(a)) => match &a.items {
            utoipa::openapi::schema::ArrayItems::RefOrSchema(s) => referenced(s),
            utoipa::openapi::schema::ArrayItems::False => None,
        },
        _ => None,
    }
}

/// States `additionalProperties: false` on every request body schema and the object
/// schemas inside it: every request type refuses unknown fields (serde's
/// `deny_unknown_fields`, 422 naming the field; the multipart form likewise), which
/// `tests/api_contract.rs` checks for each JSON operation.
pub fn document_closed_bodies(doc: &mut OpenApi) {
    let mut pending: Vec<String> = doc
        .paths
        .paths
        .values_mut()
        .flat_map(|item| {
            operations(item)
                .map(|(_, op)| op.request_body.clone())
                .collect::<Vec<_>>()
        })
        .flatten()
        .flat_map(|body| body.content.into_values())
        .filter_map(|content| content.schema.as_ref().and_then(referenced))
        .collect();
    let mut done = BTreeSet::new();
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    while let Some(name) = pending.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            pending.extend(object.properties.values().filter_map(referenced));
        }
    }
}

fn is_string(o: &Object) -> bool {
    match &o.schema_type {
        SchemaType::Type(Type::String) => true,
        SchemaType::Array(types) => types.contains(&Type::String),
        _ => false,
    }
}
