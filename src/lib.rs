//! telnyx-webrtc-credentials: hands Supabase-authenticated browser users the credentials they
//! need to place and receive calls through Telnyx WebRTC.
//!
//! The request path, top to bottom: [`http::extractor`] verifies the bearer token with
//! [`auth`], [`http::handlers`] asks the [`credentials`] source, and the response serializes
//! a [`credentials::WebRTCCredential`].

pub mod auth;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod error_chain;
pub mod hex;
pub mod http;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod shared;
pub mod supabase_admin;
pub mod telemetry;
pub mod telnyx;

pub use http::{AppState, app};
