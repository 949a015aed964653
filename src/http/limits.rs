//! Load shedding and request size limits: past `MAX_CONCURRENT_REQUESTS` credential requests in
//! flight the next one gets `503` at once instead of a place in an unbounded queue, and
//! oversized headers or bodies are refused before anything reads them.

use std::convert::Infallible;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, Layer, Service, ServiceBuilder};

use super::error::ApiError;

/// The in-flight cap for one route. Global: every method of the route shares the permits.
/// `LoadShed` asks the limit whether a permit is free and, when none is, fails the request at
/// once; that failure becomes our `503 overloaded`.
pub fn shed_load(
    max_in_flight: usize,
) -> impl Layer<
    Route,
    Service: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
                 + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: BoxError| async {
            ApiError::Overloaded
        }))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(max_in_flight))
}

/// Middleware: refuses requests whose header names and values add up to more than the state
/// (`MAX_REQUEST_HEADER_BYTES`). hyper already bounds what it buffers per connection (~400 KiB);
/// this keeps what we accept to what a browser sends.
pub async fn limit_header_size(
    State(max_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > max_bytes {
        return ApiError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}
