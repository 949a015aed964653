//! The HTTP surface: routes, the middleware stack around them, and the shared state.

pub mod around;
pub mod audit;
pub mod client_addr;
pub mod error;
pub mod extractor;
pub mod handlers;
pub mod limits;
pub mod openapi;
pub mod request_id;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRef, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Extension, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::util::{MapRequestLayer, MapResponseLayer};
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::{AccessPolicy, SessionCheck, TokenVerifier};
use crate::config::{Config, LimitsConfig};
use crate::credentials::CredentialSource;
use crate::metrics;
use crate::ratelimit::RateLimits;
use crate::shared::Redis;
use around::{Around, AroundLayer};
use error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a handler may need. axum clones the state for every request, so this is one
/// `Arc` ([`Services`] behind it): one reference count to bump, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

/// The services and settings behind [`AppState`], each built once at start-up.
pub struct Services {
    pub verifier: Arc<TokenVerifier>,
    pub policy: AccessPolicy,
    pub credentials: Arc<CredentialSource>,
    pub cors_allowed_origins: Arc<[HeaderValue]>,
    pub request_timeout: Duration,
    pub metrics: PrometheusHandle,
    /// `/metrics` beside the API; off when `METRICS_BIND_ADDR` serves it on its own.
    pub metrics_on_api: bool,
    pub limits: LimitsConfig,
    pub rate_limits: Arc<RateLimits>,
    /// `None` unless `SUPABASE_VERIFY_SESSION` is on.
    pub sessions: Option<SessionCheck>,
    /// The Redis the replicas share (`REDIS_URL`); `None` keeps all state in this process.
    pub redis: Option<Arc<Redis>>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// Fails only when the credential source cannot start (see [`CredentialSource::from_config`]).
    /// Redis is not contacted yet.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let redis = config
            .redis
            .as_ref()
            .map(|redis| Arc::new(Redis::new(redis)));
        Ok(Self(Arc::new(Services {
            verifier: Arc::new(TokenVerifier::new(&config.auth)),
            policy: AccessPolicy::new(&config.auth),
            credentials: Arc::new(CredentialSource::from_config(
                &config.credentials,
                redis.as_ref(),
            )?),
            cors_allowed_origins: config
                .cors_allowed_origins
                .iter()
                .map(|origin| HeaderValue::from_str(origin).expect("origins are validated ASCII"))
                .collect(),
            request_timeout: config.request_timeout,
            metrics: metrics::recorder(),
            metrics_on_api: config.metrics_bind_addr.is_none(),
            limits: config.limits.clone(),
            rate_limits: Arc::new(RateLimits::new(&config.limits, redis.as_ref())),
            sessions: config
                .auth
                .session_check
                .as_ref()
                .map(|check| SessionCheck::new(check, config.auth.leeway, redis.clone())),
            redis,
        })))
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for PrometheusHandle {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for Arc<CredentialSource> {
    fn from_ref(state: &AppState) -> Self {
        state.credentials.clone()
    }
}

/// The whole application, as the binary serves it and the tests drive it.
pub fn app(state: AppState) -> Router {
    let cors = cors_layer(&state.cors_allowed_origins);
    let middleware = ServiceBuilder::new()
        .layer(AroundLayer(RecordMetrics))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(AroundLayer(request_id::CheckRequestId))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(MapRequestLayer::new(client_addr::record(
            state.limits.trust_proxy_headers,
        )))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(audit::AccessLog)
                // Every response is logged above with its status, and a 5xx's cause is logged
                // where it arises: a second "response failed" line would only repeat them.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_panic| {
            // The panic message went to stderr through the panic hook; it stays out of the body.
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(cors)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(limits::LimitHeaderSizeLayer {
            max_bytes: state.limits.max_request_header_bytes,
        })
        .layer(MapResponseLayer::new(json_error_bodies(
            state.credentials.can_revoke(),
        )))
        .layer(RequestBodyLimitLayer::new(
            state.limits.max_request_body_bytes,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.request_timeout,
        ));

    let (router, document) = routes(&state).split_for_parts();
    router
        .layer(Extension(openapi::ServedDocument::new(document)))
        .route_layer(AroundLayer(RememberRoute))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware)
        .with_state(state)
}

/// This instance's routes, each registered with its OpenAPI operation by `routes!`, so
/// `/openapi.json` lists exactly what this instance answers (`DELETE` only in per_user mode,
/// `/metrics` only beside the API). A route added any other way fails the test that compares
/// the router with the document.
fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let revocable = state.credentials.can_revoke();
    let credentials = if revocable {
        routes!(handlers::issue_credential, handlers::revoke_credential)
    } else {
        routes!(handlers::issue_credential)
    };
    // One in-flight cap for every method of the route.
    let credentials = credentials.layer(limits::shed_load(state.limits.max_concurrent_requests));
    let credentials = credentials.map(|methods| refuse_other_methods(methods, revocable));
    let mut routes = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(credentials)
        .routes(routes!(handlers::liveness))
        .routes(routes!(handlers::readiness))
        .routes(routes!(openapi::openapi_json));
    if state.metrics_on_api {
        routes = routes.routes(routes!(handlers::metrics));
    }
    routes
}

/// `/credentials`' answer to a method it does not serve, `HEAD` included: axum would answer `HEAD`
/// with the `GET` handler (a verified token, an audit line and, in per_user mode, maybe a new
/// Telnyx credential, all for an answer without a body) and list it in `Allow`. These 405s carry
/// an `Allow` of their own, which axum leaves in place.
fn refuse_other_methods(
    methods: MethodRouter<AppState>,
    revocable: bool,
) -> MethodRouter<AppState> {
    let allow = if revocable {
        "GET,POST,DELETE"
    } else {
        "GET,POST"
    };
    let refuse = move || async move {
        (
            [(header::ALLOW, allow)],
            ApiError::MethodNotAllowed { revocable },
        )
    };
    methods.head(refuse).fallback(refuse)
}

/// `/metrics` alone, for `METRICS_BIND_ADDR`: a port that need not be public.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .with_state(state)
}

/// Counts and times every response, the framework's own (404, 405, timeouts, CORS preflights)
/// included, labelled with the route template that answered (never the raw path).
#[derive(Clone, Copy)]
struct RecordMetrics;

impl Around for RecordMetrics {
    /// When the request arrived, and its method as a label.
    type Noted = (Instant, &'static str);

    fn request<B>(&self, request: &mut axum::http::Request<B>) -> Self::Noted {
        let method = match *request.method() {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            Method::HEAD => "HEAD",
            _ => "other",
        };
        (Instant::now(), method)
    }

    fn response<B>((started, method): Self::Noted, response: &mut axum::http::Response<B>) {
        let route = response
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        metrics::http_request(route, method, response.status().as_u16(), started.elapsed());
    }
}

/// Hands the matched route template out with the response: layers outside the router run
/// before routing and cannot see it on the request.
#[derive(Clone, Copy)]
struct RememberRoute;

impl Around for RememberRoute {
    type Noted = Option<MatchedPath>;

    fn request<B>(&self, request: &mut axum::http::Request<B>) -> Self::Noted {
        request.extensions().get::<MatchedPath>().cloned()
    }

    fn response<B>(route: Self::Noted, response: &mut axum::http::Response<B>) {
        if let Some(route) = route {
            response.extensions_mut().insert(route);
        }
    }
}

/// Exact origins only; no origin configured means no cross-origin access at all. The token
/// travels in a header, never a cookie, so credentials mode stays off. `Retry-After` is exposed
/// so that a page can wait as long as a 429 or 503 asks (browsers hide other headers from it).
fn cors_layer(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// The span every log line of a request is written in. The path only: a query string could
/// carry a token, and the `Authorization` header is never recorded.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let client_addr = client_addr::ClientAddr::of(request.extensions());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        client_addr = %client_addr,
        user_id = tracing::field::Empty,
    )
}

/// Gives the framework's bare error responses (unknown method, timeout) and tower-http's
/// plain-text 413 the same JSON body as ours, keeping their status and headers (`Allow` on a 405).
/// `revocable`: whether `/credentials` serves `DELETE`, for the 405's sentence.
fn json_error_bodies<B>(revocable: bool) -> impl Fn(axum::http::Response<B>) -> Response + Clone
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    move |response| json_error_body(response, revocable)
}

fn json_error_body<B>(response: axum::http::Response<B>, revocable: bool) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let response = response.map(Body::new);
    let status = response.status();
    let bare = response.headers().get(header::CONTENT_TYPE).is_none()
        || status == StatusCode::PAYLOAD_TOO_LARGE;
    if !bare || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed { revocable },
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Timeout,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => return response,
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (replacement, body) = error.into_response().into_parts();
    parts.headers.extend(replacement.headers);
    parts.extensions.extend(replacement.extensions);
    Response::from_parts(parts, body)
}
