//! Running the service: bind, keep the signing keys fresh and the metrics bounded, serve until
//! SIGINT or SIGTERM.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{AppState, app, metrics_app};

/// Why the service could not start with a configuration that passed validation.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {variable}={address}: {source}")]
    Bind {
        variable: &'static str,
        address: SocketAddr,
        source: io::Error,
    },
    #[error("cannot start the credential source: {0}")]
    Credentials(String),
}

/// A bound, not yet serving, instance of the service.
pub struct Server {
    listener: TcpListener,
    /// `METRICS_BIND_ADDR`'s listener, when `/metrics` is served apart from the API.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

async fn listen(variable: &'static str, address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind {
            variable,
            address,
            source,
        })
}

impl Server {
    /// Binds `config.bind_addr`; port 0 picks a free port (see [`Server::local_addr`]).
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        let state = AppState::from_config(config).map_err(StartError::Credentials)?;
        let listener = listen("BIND_ADDR", config.bind_addr).await?;
        let metrics_listener = match config.metrics_bind_addr {
            Some(address) => Some(listen("METRICS_BIND_ADDR", address).await?),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            state,
        })
    }

    /// Where `/metrics` is served apart from the API, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|listener| {
            listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    ///
    /// The first JWKS fetch runs in the background: an unreachable Supabase delays nothing,
    /// HS256 tokens are served at once, and `/readyz` says 503 until the keys arrive.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let refresher: Option<JoinHandle<()>> = self
            .state
            .verifier
            .key_store()
            .map(|store| tokio::spawn(store.clone().refresh_forever()));
        let sweeper = tokio::spawn(self.state.rate_limits.clone().sweep_forever());
        if let Some(redis) = self.state.redis.clone() {
            // In the background, as the JWKS: a Redis that is down delays nothing.
            tokio::spawn(async move { redis.connect().await });
        }
        if !self.state.verifier.accepts_hs256() {
            tracing::info!("SUPABASE_JWT_SECRET is not set: legacy HS256 tokens will be refused");
        }
        let upkeep = tokio::spawn(crate::metrics::upkeep_forever(self.state.metrics.clone()));
        let Self {
            listener,
            metrics_listener,
            state,
        } = self;
        let metrics_server: Option<JoinHandle<io::Result<()>>> = metrics_listener.map(|listener| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "serving /metrics");
            }
            tokio::spawn(axum::serve(listener, metrics_app(state.clone())).into_future())
        });
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, mode = state.credentials.mode(), "listening");
        }
        // The peer address is the client address, unless TRUST_PROXY_HEADERS says otherwise.
        let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        for task in [
            refresher.map(|task| task.abort_handle()),
            metrics_server.map(|task| task.abort_handle()),
            Some(sweeper.abort_handle()),
            Some(upkeep.abort_handle()),
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
        }
        result
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what container platforms send).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received: finishing in-flight requests"),
        () = terminate => tracing::info!("SIGTERM received: finishing in-flight requests"),
    }
}
