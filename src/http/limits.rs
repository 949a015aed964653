//! Load shedding and request size limits: past `MAX_CONCURRENT_REQUESTS` credential requests in
//! flight the next one gets `503` at once instead of a place in an unbounded queue, and
//! oversized headers or bodies are refused before anything reads them.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use futures_util::future::Either;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, Layer, Service, ServiceBuilder};

use super::error::ApiError;

/// The in-flight cap, `MAX_CONCURRENT_REQUESTS` permits of `in_flight`: every method of every
/// route given the same semaphore shares them. `LoadShed` asks the limit whether a permit is
/// free and, when none is, fails the request at once; that failure becomes our `503 overloaded`.
pub fn shed_load(
    in_flight: Arc<Semaphore>,
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
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight))
}

/// Refuses requests whose header names and values add up to more than `max_bytes`
/// (`MAX_REQUEST_HEADER_BYTES`). hyper already bounds what it buffers per connection (~400 KiB);
/// this keeps what we accept to what a browser sends.
#[derive(Clone, Copy)]
pub struct LimitHeaderSizeLayer {
    pub max_bytes: usize,
}

impl<S> Layer<S> for LimitHeaderSizeLayer {
    type Service = LimitHeaderSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitHeaderSize {
            inner,
            max_bytes: self.max_bytes,
        }
    }
}

#[derive(Clone)]
pub struct LimitHeaderSize<S> {
    inner: S,
    max_bytes: usize,
}

impl<S, B> Service<Request<B>> for LimitHeaderSize<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let size: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if size > self.max_bytes {
            return Either::Left(ready(Ok(ApiError::HeadersTooLarge.into_response())));
        }
        Either::Right(self.inner.call(request))
    }
}
