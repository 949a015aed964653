//! Middleware as two plain steps: note something from the request on the way in, use it on the
//! response on the way out. For the two middlewares of [`app`](super::app) that need both steps,
//! the metrics and the matched route; one that only amends the request or the response is a
//! `tower::util::MapRequestLayer` or `MapResponseLayer`.
//!
//! `axum::middleware::from_fn` would be shorter to write, but it boxes the inner service and
//! each of its futures on every request: when six middlewares were written with it, that was 51
//! of the 151 allocations of a `GET /credentials` (measured with valgrind's DHAT), and a tenth
//! of the server's CPU time went to the allocator. An [`Around`] costs none.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// One middleware's two steps.
pub trait Around: Clone {
    /// What the request step hands to the response step.
    type Noted: Send + 'static;

    /// Runs before the inner service sees `request`, and may amend it.
    fn request<B>(&self, request: &mut Request<B>) -> Self::Noted;

    /// Runs on the inner service's response. Not called when the inner service fails, which
    /// in this application it never does (every error is a response by then).
    fn response<B>(noted: Self::Noted, response: &mut Response<B>);
}

/// The [`Layer`] of an [`Around`].
#[derive(Clone)]
pub struct AroundLayer<A>(pub A);

impl<S, A: Around> Layer<S> for AroundLayer<A> {
    type Service = AroundService<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundService {
            inner,
            around: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AroundService<S, A> {
    inner: S,
    around: A,
}

impl<S, A, B, ResB> Service<Request<B>> for AroundService<S, A>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    A: Around,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AroundFuture<S::Future, A>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let noted = self.around.request(&mut request);
        AroundFuture {
            inner: self.inner.call(request),
            noted: Some(noted),
        }
    }
}

pin_project! {
    pub struct AroundFuture<F, A: Around> {
        #[pin]
        inner: F,
        noted: Option<A::Noted>,
    }
}

impl<F, A, ResB, E> Future for AroundFuture<F, A>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    A: Around,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(noted)) = (&mut result, this.noted.take()) {
            A::response(noted, response);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use axum::http::HeaderValue;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;

    /// Copies a request header onto the response, and marks the request on its way in.
    #[derive(Clone)]
    struct Echo;

    impl Around for Echo {
        type Noted = Option<HeaderValue>;

        fn request<B>(&self, request: &mut Request<B>) -> Self::Noted {
            request
                .headers_mut()
                .insert("x-seen", HeaderValue::from_static("yes"));
            request.headers().get("x-echo").cloned()
        }

        fn response<B>(noted: Self::Noted, response: &mut Response<B>) {
            if let Some(value) = noted {
                response.headers_mut().insert("x-echo", value);
            }
        }
    }

    #[tokio::test]
    async fn the_request_step_amends_the_request_and_its_note_reaches_the_response() {
        let service = ServiceBuilder::new()
            .layer(AroundLayer(Echo))
            .service(service_fn(|request: Request<Body>| async move {
                let seen = request.headers().contains_key("x-seen");
                Ok::<_, Infallible>(Response::new(Body::from(seen.to_string())))
            }));
        let request = Request::builder()
            .header("x-echo", "hello")
            .body(Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-echo"], "hello");
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"true");
    }
}
