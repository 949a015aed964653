//! Running the service: bind, keep the signing keys fresh and the metrics bounded, accept
//! connections up to the cap, serve until SIGINT or SIGTERM, then drain within the grace period.

mod accept;
pub mod connection;
pub mod open_files;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::Config;
use crate::http::{AppState, app, metrics_app};
use accept::{Door, accept_if_open};
use connection::Settings;
use open_files::{ConnectionBudget, METRICS_CONNECTIONS};

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
    /// `MAX_CONNECTIONS` does not fit under the open-files limit.
    #[error("{0}")]
    OpenFiles(String),
}

/// A bound, not yet serving, instance of the service.
pub struct Server {
    listener: TcpListener,
    /// `METRICS_BIND_ADDR`'s listener, when `/metrics` is served apart from the API.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    budget: ConnectionBudget,
    connection: Settings,
    shutdown_grace: Duration,
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
    ///
    /// First raises the open-files limit (see [`open_files`]), before anything opens a file.
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        let budget = ConnectionBudget::at_start_up(config).map_err(StartError::OpenFiles)?;
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
            budget,
            connection: Settings {
                header_timeout: config.connections.header_timeout,
                idle_timeout: config.connections.idle_timeout,
                max_head_bytes: config.limits.max_request_header_bytes + 8 * 1024,
            },
            shutdown_grace: config.connections.shutdown_grace,
        })
    }

    /// The open-files limit in effect and the connection cap under it.
    pub fn connection_budget(&self) -> ConnectionBudget {
        self.budget
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

    /// Serves until `shutdown` completes, then lets in-flight requests finish, for at most
    /// `SHUTDOWN_GRACE_SECS` (see [`drain`]).
    ///
    /// The first JWKS fetch runs in the background: an unreachable Supabase delays nothing,
    /// HS256 tokens are served at once, and `/readyz` says 503 until the keys arrive. Each
    /// third-party issuer's keys are fetched the same way; until they arrive its tokens are
    /// refused, and `/readyz` lists it as not ready.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // One per issuer, Supabase's and each third-party one's: an issuer that cannot be
        // reached keeps being retried, and delays no other.
        let refreshers: Vec<JoinHandle<()>> = self
            .state
            .verifier
            .key_stores()
            .map(|store| tokio::spawn(store.clone().refresh_forever()))
            .collect();
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
            budget,
            connection,
            shutdown_grace,
        } = self;
        log_budget(&budget);
        crate::metrics::register_connection_series();
        let mut metrics = metrics_listener.map(|listener| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "serving /metrics");
            }
            Door::new(
                "METRICS_BIND_ADDR",
                listener,
                metrics_app(state.clone()),
                METRICS_CONNECTIONS,
            )
        });
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, mode = state.credentials.mode(), "listening");
        }
        let mut api = Door::new("BIND_ADDR", listener, app(state), budget.max_connections);
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        loop {
            let (stream, peer, permit, router) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                (stream, peer, permit) = api.accept() => (stream, peer, permit, api.router.clone()),
                (stream, peer, permit) = accept_if_open(metrics.as_mut()) => {
                    let router = metrics.as_ref().expect("accepted on it").router.clone();
                    (stream, peer, permit, router)
                }
            };
            // Finished connections are collected as new ones come, so the set holds only the
            // open ones.
            while connections.try_join_next().is_some() {}
            connections.spawn(connection::serve(
                stream,
                peer,
                router,
                connection,
                graceful.watcher(),
                permit,
            ));
        }
        // Closing the listeners refuses new connections at once, instead of leaving them in
        // the backlog until the process exits.
        drop((api, metrics));
        drain(graceful, connections, shutdown_grace).await;
        for task in refreshers
            .iter()
            .chain([&sweeper, &upkeep])
            .map(JoinHandle::abort_handle)
        {
            task.abort();
        }
        Ok(())
    }
}

fn log_budget(budget: &ConnectionBudget) {
    match budget.files {
        Some(files) => tracing::info!(
            open_files = files.soft,
            raised_from = files.soft_before,
            hard_limit = files.hard,
            max_connections = budget.max_connections,
            "open-files limit in effect"
        ),
        None => tracing::info!(
            max_connections = budget.max_connections,
            "open-files limit unknown on this platform"
        ),
    }
}

/// After the signal: idle connections close at once, in-flight requests finish (hyper ends
/// each connection after its current response), and what is still open after `grace` is cut.
async fn drain(graceful: GracefulShutdown, mut connections: JoinSet<()>, grace: Duration) {
    let open = graceful.count();
    if open > 0 {
        tracing::info!(
            connections = open,
            grace_secs = grace.as_secs(),
            "closing idle connections; in-flight requests may finish"
        );
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            grace_secs = grace.as_secs(),
            "SHUTDOWN_GRACE_SECS has passed: closing the connections still open"
        );
    }
    // Dropping a connection's task closes its socket and counts it as closed by the shutdown.
    connections.shutdown().await;
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
