//! `GET /openapi.json`: the OpenAPI 3.1 description of this instance's API, generated from the
//! handlers' `#[utoipa::path]` attributes, the response types' schemas and [`ApiError`] itself,
//! so it cannot drift from the code. A handler is routed only through `utoipa_axum::routes!`,
//! which documents it in the same step (see `http::routes`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::handlers::DeviceList;
use crate::credentials::{Device, WebRTCCredential};

/// The name of the bearer-token security scheme that `/credentials` and `/devices` require.
pub const SECURITY_SCHEME: &str = "supabase_access_token";

/// The name of the bearer-token security scheme of `/admin/…`: `ADMIN_API_TOKEN`.
pub const ADMIN_SECURITY_SCHEME: &str = "admin_api_token";

/// The tag of what the app's backend calls with `ADMIN_API_TOKEN`.
pub const ADMIN_TAG: &str = "admin";

/// The tag of the probes, apart from the API a browser calls.
pub const HEALTH_TAG: &str = "health";

/// The tag of what operators read: metrics.
pub const OPERATIONS_TAG: &str = "operations";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "telnyx-webrtc-credentials",
        description = "Hands Supabase-authenticated browser users the credentials they need to \
            place and receive phone calls through Telnyx WebRTC. Every error has the same JSON \
            body: a sentence a person can act on (`error`) and a stable `code` to switch on."
    ),
    // `DeviceList` and `Device` in every instance's document, `/devices` served or not (static
    // mode), so that the browser package's types, generated from demo's, have them.
    components(schemas(ErrorBody, DeviceList, Device))
)]
pub struct ApiDoc;

/// The document `http::routes` collected, completed with the bearer scheme, every error code,
/// and the errors any route can answer with.
pub fn complete(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SECURITY_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "The signed-in user's Supabase access token (`session.access_token`), \
                     as `Authorization: Bearer <token>`.",
                ))
                .build(),
        ),
    );
    if document
        .paths
        .paths
        .keys()
        .any(|path| path.starts_with("/admin/"))
    {
        components.add_security_scheme(
            ADMIN_SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The service's `ADMIN_API_TOKEN`, as `Authorization: Bearer <token>`: \
                         for the app's backend, never for a browser.",
                    ))
                    .build(),
            ),
        );
    }
    list_error_codes(components.schemas.get_mut(ErrorBody::name().as_ref()));
    if let Some(credential) = components
        .schemas
        .get_mut(WebRTCCredential::name().as_ref())
    {
        *credential = flattened(std::mem::replace(credential, RefOr::T(Schema::default())));
    }
    for (path, item) in &mut document.paths.paths {
        for operation in operations(item) {
            describe_errors(path, operation);
        }
    }
    make_operation_ids_unique(&mut document);
    document
}

/// utoipa declares the fields a `#[serde(flatten)]` brings in as an `allOf` of its parts; the
/// browser reads one object, so the document declares one, with the parts' properties (how
/// `WebRTCCredential` gets its identity's and its connectivity's fields).
pub(crate) fn flattened(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::AllOf(all_of)) = schema else {
        return schema;
    };
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(all_of.description)
        .build();
    for part in all_of.items {
        let RefOr::T(Schema::Object(part)) = flattened(part) else {
            panic!("a flattened part is inline: mark the field #[schema(inline)]");
        };
        object.properties.extend(part.properties);
        object.required.extend(part.required);
    }
    RefOr::T(Schema::Object(object))
}

/// The completed document as JSON, rendered once when the router is built.
#[derive(Clone)]
pub struct ServedDocument(Arc<str>);

impl ServedDocument {
    pub fn new(collected: utoipa::openapi::OpenApi) -> Self {
        let json = complete(collected)
            .to_json()
            .expect("the OpenAPI document serializes");
        Self(json.into())
    }
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = OPERATIONS_TAG,
    summary = "This OpenAPI 3.1 document",
    responses((status = OK, body = serde_json::Value, description = "The document")),
)]
pub async fn openapi_json(Extension(document): Extension<ServedDocument>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0.to_string(),
    )
        .into_response()
}

/// Errors every route can answer with, declared or not: the size limits, a caught panic and
/// the timeout wrap them all.
fn any_route_errors() -> [ApiError; 4] {
    [
        ApiError::PayloadTooLarge,
        ApiError::HeadersTooLarge,
        ApiError::Internal(String::new()),
        ApiError::Timeout,
    ]
}

/// Makes `ErrorBody.code` an enum of every code.
fn list_error_codes(schema: Option<&mut RefOr<Schema>>) {
    let Some(RefOr::T(Schema::Object(body))) = schema else {
        panic!("ErrorBody is an object schema in the components");
    };
    let mut codes: Vec<&str> = ApiError::every_kind()
        .iter()
        .map(|error| error.describe().code)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    body.properties.insert(
        "code".into(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some("A stable code to switch on."))
            .into(),
    );
}

/// Spells out under each error status a route declares which codes it may carry, with their
/// sentences (those of its status, less the ones [`ApiError::only_on`] gives to other routes);
/// then adds the errors any route can answer with where the route declares none.
fn describe_errors(path: &str, operation: &mut Operation) {
    let error_body = || RefOr::from(Ref::from_schema_name(ErrorBody::name()));
    let mut by_status: BTreeMap<u16, Vec<ApiError>> = BTreeMap::new();
    let here = |error: &ApiError| error.only_on().is_none_or(|paths| paths.contains(&path));
    for error in ApiError::every_kind().into_iter().filter(here) {
        by_status
            .entry(error.describe().status.as_u16())
            .or_default()
            .push(error);
    }
    for (status, response) in &mut operation.responses.responses {
        let (Ok(status), RefOr::T(response)) = (status.parse::<u16>(), response) else {
            continue;
        };
        // A status declared with an error body may carry any code of that status; one declared
        // with a body of its own (`/readyz`'s 503) only the errors every route can answer with.
        let declares_error_body = matches!(
            response.content.get("application/json"),
            Some(RefOr::T(content)) if content.schema == Some(error_body())
        );
        let errors: Vec<ApiError> = if declares_error_body {
            by_status.remove(&status).unwrap_or_default()
        } else {
            let generic = any_route_errors().into_iter();
            generic
                .filter(|error| error.describe().status.as_u16() == status)
                .collect()
        };
        if !errors.is_empty() {
            response.description = with_codes(&response.description, &errors);
        }
    }
    for error in any_route_errors() {
        let status = error.describe().status;
        let response = operation
            .responses
            .responses
            .entry(status.as_str().to_owned())
            .or_insert_with(|| {
                let description = status.canonical_reason().unwrap_or_default();
                ResponseBuilder::new()
                    .description(with_codes(description, &[error]))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(error_body())).build(),
                    )
                    .into()
            });
        // A route that declares this status with a body of its own (`/readyz`'s 503) may
        // still answer it with an error body.
        if let RefOr::T(response) = response
            && let Some(RefOr::T(content)) = response.content.get_mut("application/json")
            && let Some(schema) = content.schema.take()
        {
            content.schema = Some(if schema == error_body() {
                schema
            } else {
                OneOfBuilder::new().item(schema).item(error_body()).into()
            });
        }
    }
}

fn with_codes(description: &str, errors: &[ApiError]) -> String {
    let codes: Vec<String> = errors
        .iter()
        .map(|error| error.describe())
        .map(|error| format!("- `{}`: {}", error.code, error.message))
        .collect();
    format!("{description}. Error codes:\n{}", codes.join("\n"))
}

/// `routes!` names an operation after its handler; a handler serving several methods
/// (`/credentials`' GET and POST) gets the method appended on all but the first.
fn make_operation_ids_unique(document: &mut utoipa::openapi::OpenApi) {
    let mut seen = HashSet::new();
    for item in document.paths.paths.values_mut() {
        for (method, operation) in operations_by_method(item) {
            if let Some(id) = &mut operation.operation_id
                && !seen.insert(id.clone())
            {
                id.push('_');
                id.push_str(method);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    operations_by_method(item).map(|(_, operation)| operation)
}

fn operations_by_method(
    item: &mut PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use secrecy::SecretString;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::config::{Config, DemoSecrets, lookup_from};
    use crate::http::error::Description;
    use crate::http::{AppState, app};

    /// `demo` (static mode, `/metrics` beside the API) and per_user mode with `/metrics` on a
    /// port of its own and the admin route: between them, every route is served by one and left
    /// out by the other.
    fn states() -> [AppState; 2] {
        let secrets = DemoSecrets {
            jwt_secret: SecretString::from("a-test-secret-that-is-long-enough-0123456789"),
            sip_username: "demo".into(),
            sip_password: SecretString::from("pw"),
        };
        let demo = Config::demo(lookup_from([]), secrets).unwrap();
        let per_user = Config::from_lookup(lookup_from([
            ("SUPABASE_URL", "https://abcd.supabase.co"),
            ("CREDENTIAL_MODE", "per_user"),
            ("TELNYX_API_KEY", "KEY-test"),
            ("TELNYX_WEBRTC_CONNECTION_ID", "1234567890"),
            ("METRICS_BIND_ADDR", "127.0.0.1:0"),
            ("ADMIN_API_TOKEN", "admin-token-for-the-openapi-tests-0123"),
        ]))
        .unwrap();
        [demo, per_user].map(|config| AppState::from_config(&config).unwrap())
    }

    fn document_for(state: &AppState) -> utoipa::openapi::OpenApi {
        complete(super::super::routes(state).split_for_parts().1)
    }

    /// The paths the router matches. axum has no API to list them, but its `Debug` output
    /// names each, as `node: Node { paths: {RouteId(1): "/credentials", ...} }`.
    fn routed_paths(router: &Router) -> BTreeSet<String> {
        let debug = format!("{router:?}");
        let marker = "node: Node { paths: {";
        let start = debug.find(marker).unwrap_or_else(|| {
            panic!("axum's Debug output no longer lists paths as {marker:?}: {debug}")
        });
        let mut rest = &debug[start + marker.len()..];
        let mut paths = BTreeSet::new();
        while let Some(entry) = rest.strip_prefix("RouteId(") {
            let (_, after) = entry.split_once("): \"").expect("RouteId(n): \"path\"");
            let (path, after) = after.split_once('"').expect("a quoted path");
            paths.insert(path.to_owned());
            rest = after.strip_prefix(", ").unwrap_or(after);
        }
        assert!(rest.starts_with('}'), "unparsed: {rest}");
        paths
    }

    #[test]
    fn every_routed_path_is_documented_and_every_documented_path_is_routed() {
        for state in states() {
            let mut documented: BTreeSet<String> =
                document_for(&state).paths.paths.keys().cloned().collect();
            let routed = routed_paths(&app(state.clone()));
            assert!(routed.contains("/credentials"), "{routed:?}");
            assert!(routed.contains("/devices"), "{routed:?}");
            assert_eq!(routed.contains("/metrics"), state.metrics_on_api);
            let per_user = state.credentials.devices().is_some();
            assert_eq!(routed.contains(crate::http::ADMIN_DEVICES_PATH), per_user);
            assert_eq!(documented.contains("/devices"), per_user);
            let refused = crate::http::refused_paths(&state);
            documented.extend(refused.iter().map(|path| (*path).to_owned()));
            assert_eq!(
                routed, documented,
                "add routes with .routes(routes!(handler)) and document the handler with #[utoipa::path]"
            );
        }
    }

    #[tokio::test]
    async fn each_path_answers_exactly_the_documented_methods() {
        for state in states() {
            let mut document = document_for(&state);
            let router = app(state.clone());
            let mut paths: Vec<(String, BTreeSet<&str>)> = Vec::new();
            for (path, item) in &mut document.paths.paths {
                let documented = operations_by_method(item)
                    .map(|(method, _)| method)
                    .collect();
                paths.push((path.clone(), documented));
            }
            // Routed to say why nothing is served there: every method is refused.
            for path in crate::http::refused_paths(&state) {
                paths.push(((*path).to_owned(), BTreeSet::new()));
            }
            for (path, documented) in paths {
                // Not OPTIONS: the CORS layer answers it on every path, as a preflight.
                for method in ["get", "post", "put", "patch", "delete"] {
                    let request = Request::builder()
                        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                        .uri(path.replace("{sub}", "6f1c0b5e-0000-4000-8000-000000000001"))
                        .body(Body::empty())
                        .unwrap();
                    let status = router.clone().oneshot(request).await.unwrap().status();
                    assert_eq!(
                        status != StatusCode::METHOD_NOT_ALLOWED,
                        documented.contains(method),
                        "{} mode: {method} {path} answered {status}",
                        state.credentials.mode()
                    );
                }
            }
        }
    }

    #[test]
    fn credentials_require_the_bearer_scheme_and_nothing_else_does() {
        for state in states() {
            let mut document = document_for(&state);
            let schemes = &document.components.as_ref().unwrap().security_schemes;
            assert!(schemes.contains_key(SECURITY_SCHEME));
            let admin = document
                .paths
                .paths
                .contains_key(crate::http::ADMIN_DEVICES_PATH);
            assert_eq!(schemes.contains_key(ADMIN_SECURITY_SCHEME), admin);
            for (path, item) in &mut document.paths.paths {
                for (method, operation) in operations_by_method(item) {
                    let names: Vec<String> = serde_json::to_value(&operation.security)
                        .unwrap()
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|requirement| requirement.as_object().unwrap().keys().cloned())
                        .collect();
                    let expected: &[&str] = match path.as_str() {
                        "/credentials" | "/devices" => &[SECURITY_SCHEME],
                        crate::http::ADMIN_DEVICES_PATH => &[ADMIN_SECURITY_SCHEME],
                        _ => &[],
                    };
                    assert_eq!(names, expected, "{method} {path}");
                }
            }
        }
    }

    #[test]
    fn every_error_code_is_listed_and_explained_under_its_status() {
        let [_, per_user] = states();
        let json: Value = serde_json::to_value(document_for(&per_user)).unwrap();
        let listed = &json["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"];
        let operations = [
            ("/credentials", "get"),
            ("/credentials", "post"),
            ("/credentials", "delete"),
            ("/devices", "get"),
            (crate::http::ADMIN_DEVICES_PATH, "get"),
        ];
        for (path, method) in operations {
            let responses = &json["paths"][path][method]["responses"];
            for error in ApiError::every_kind() {
                let Description {
                    status,
                    code,
                    message,
                    ..
                } = error.describe();
                assert!(
                    listed.as_array().unwrap().contains(&code.into()),
                    "{code} not in {listed}"
                );
                let explained = responses[status.as_str()]["description"]
                    .as_str()
                    .is_some_and(|text| text.contains(&format!("`{code}`: {message}")));
                // Answered without an operation: by the framework for a path or method that has
                // none, or on a path routed only to refuse (`/devices` in static mode).
                let unrouted = matches!(
                    error,
                    ApiError::NotFound
                        | ApiError::MethodNotAllowed { .. }
                        | ApiError::GetOnly
                        | ApiError::NoDevicesInStaticMode
                );
                let here = error.only_on().is_none_or(|paths| paths.contains(&path));
                assert_eq!(
                    explained,
                    here && !unrouted,
                    "{code} under {method} {path} {status}"
                );
            }
        }
        for probe in ["/healthz", "/readyz"] {
            let description = json["paths"][probe]["get"]["responses"]["503"]["description"]
                .as_str()
                .unwrap();
            assert!(description.contains("`timeout`"), "{probe}: {description}");
            assert!(
                !description.contains("telnyx_unavailable"),
                "{probe}: {description}"
            );
        }
        let ids: BTreeSet<&str> = ["get", "post", "delete"]
            .iter()
            .map(|method| {
                json["paths"]["/credentials"][method]["operationId"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids.len(), 3, "operation ids are unique: {ids:?}");
    }

    #[tokio::test]
    async fn the_document_is_served_as_openapi_3_1_json() {
        for state in states() {
            let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
            let response = app(state.clone()).oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let served: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(served["openapi"], "3.1.0");
            assert_eq!(served, serde_json::to_value(document_for(&state)).unwrap());
        }
    }

    #[test]
    fn devices_are_declared_as_device_list_and_device_and_device_id_as_a_parameter() {
        let [demo, per_user] = states();
        let json: Value = serde_json::to_value(document_for(&per_user)).unwrap();
        let schemas = &json["components"]["schemas"];
        let list = &schemas["DeviceList"];
        assert_eq!(list["required"], serde_json::json!(["devices"]), "{list}");
        assert_eq!(
            list["properties"]["devices"]["items"]["$ref"],
            "#/components/schemas/Device"
        );
        let device = &schemas["Device"];
        let properties: BTreeSet<&str> = device["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            properties,
            BTreeSet::from([
                "device_id",
                "sip_username",
                "created_at",
                "expires_at",
                "last_issued_at"
            ])
        );
        for nullable in ["device_id", "expires_at", "last_issued_at"] {
            let types = device["properties"][nullable]["type"].to_string();
            assert!(types.contains("null"), "{nullable}: {types}");
        }
        let required: BTreeSet<&str> = device["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        assert_eq!(required, properties, "every field is always there");
        for path in ["/devices", crate::http::ADMIN_DEVICES_PATH] {
            assert_eq!(
                json["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                    ["$ref"],
                "#/components/schemas/DeviceList",
                "{path}"
            );
        }
        for method in ["get", "post", "delete"] {
            let parameters = &json["paths"]["/credentials"][method]["parameters"];
            let device_id = parameters
                .as_array()
                .unwrap()
                .iter()
                .find(|parameter| parameter["name"] == "device_id")
                .unwrap_or_else(|| panic!("{method}: {parameters}"));
            assert_eq!(device_id["in"], "query");
            assert_eq!(device_id["required"], false);
            assert_eq!(device_id["schema"]["pattern"], "^[A-Za-z0-9_-]{1,64}$");
        }
        assert_eq!(
            json["paths"][crate::http::ADMIN_DEVICES_PATH]["get"]["tags"],
            serde_json::json!([ADMIN_TAG])
        );
        let demo: Value = serde_json::to_value(document_for(&demo)).unwrap();
        assert!(demo["paths"].get("/devices").is_none());
        // The schemas all the same, for the types generated from demo's document.
        assert_eq!(demo["components"]["schemas"]["Device"], *device);
        assert_eq!(demo["components"]["schemas"]["DeviceList"], *list);
    }

    #[test]
    fn the_credential_schema_has_each_secret_and_ice_servers_as_optional() {
        let json: Value = serde_json::to_value(document_for(&states()[0])).unwrap();
        let schema = &json["components"]["schemas"]["WebRTCCredential"];
        let properties: BTreeSet<&String> =
            schema["properties"].as_object().unwrap().keys().collect();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        // ice_servers is there only with configured TURN credentials.
        for optional in ["password", "login_token", "ice_servers"] {
            assert!(properties.contains(&optional.to_owned()), "{properties:?}");
            assert!(
                !required.contains(&optional),
                "{optional} is not always there"
            );
        }
        for name in ["username", "expires_at", "sip_uri", "turn_servers"] {
            assert!(required.contains(&name), "{name} in {required:?}");
        }
    }
}
