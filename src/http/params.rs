//! The query parameters of `/credentials`: the optional `device_id`, checked in one place
//! ([`DeviceId::parse`]) and refused with `400 invalid_device_id` when it is not one.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::credentials::DeviceId;

/// The query `/credentials` reads, as the OpenAPI document declares it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// An opaque id the browser makes once and keeps (`crypto.randomUUID()` in
    /// `localStorage`), so that each device gets a Telnyx credential of its own, under the same
    /// user. Leave it out for the user's default credential. Ignored in static mode.
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    device_id: Option<String>,
}

/// The device a request is for: `None` without a `device_id`.
#[derive(Debug, Clone)]
pub struct RequestedDevice(pub Option<DeviceId>);

impl<S: Send + Sync> FromRequestParts<S> for RequestedDevice {
    type Rejection = ApiError;

    /// Any other parameter is ignored; a `device_id` given twice is refused like a malformed one.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(query) = Query::<DeviceQuery>::try_from_uri(&parts.uri).map_err(|_| {
            tracing::debug!("refused: the query string does not parse");
            ApiError::InvalidDeviceId
        })?;
        let device = query
            .device_id
            .as_deref()
            .map(DeviceId::parse)
            .transpose()
            .map_err(|error| {
                tracing::debug!(%error, "refused: invalid device_id");
                ApiError::InvalidDeviceId
            })?;
        Ok(Self(device))
    }
}
