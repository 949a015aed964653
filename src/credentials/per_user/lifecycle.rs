//! A holder's telephony credential through its life at Telnyx: found or created (one per
//! holder, a user's or one of their devices', tagged with the user's tag; never a blind second
//! create), moved forward while its user is active, deleted and replaced
//! once expired, and a login token minted for it that is handed out only once the credential
//! has had time to propagate.
//!
//! Telnyx's sources this rests on: the team-telnyx/openapi `spec3.yml` telephony-credential paths
//! (`expires_at` and `tag` on create, `expires_at` on `PATCH`, `expired`, paginated lists whose
//! `filter[status]` has no documented values) and the JWT authentication guide on
//! developers.telnyx.com (wait about 5 seconds after creating a credential before logging in with
//! it or a token for it, or the login "can fail transiently").
//!
//! Which credential is a holder's is decided with a [`Registry`]: with `REDIS_URL` the first
//! replica to record one in Redis wins; without it, the oldest at Telnyx does.

use std::time::{Duration, SystemTime};

use super::Rules;
use crate::credentials::{CredentialError, Holder};
use crate::telnyx::{Budget, LoginToken, TelephonyCredential, TelnyxClient, TelnyxError};

/// Telnyx writes `created_at` to the second (`2020-06-18T21:32:38`): the credential may be up to
/// this much younger than it says.
const CREATED_AT_PRECISION: Duration = Duration::from_secs(1);

/// What a replica knows about a user's credential between two token mints.
#[derive(Debug, Clone)]
pub(super) struct KnownCredential {
    pub record: TelephonyCredential,
    /// Before this, Telnyx may still refuse a login with the credential or its tokens.
    pub usable_at: SystemTime,
}

impl KnownCredential {
    /// One this replica created: Telnyx's answer came at `answered_at`, so the credential is at
    /// most that old.
    fn created(record: TelephonyCredential, answered_at: SystemTime, rules: &Rules) -> Self {
        Self {
            record,
            usable_at: answered_at + rules.propagation,
        }
    }

    /// One found in a list, made by another replica or an earlier process. Its `created_at` is
    /// Telnyx's clock: one ahead of ours counts as now, so a skewed clock cannot make a request
    /// wait longer than the propagation delay.
    fn listed(record: TelephonyCredential, now: SystemTime, rules: &Rules) -> Self {
        let usable_at = match record.created_at {
            Some(_) if rules.propagation.is_zero() => now,
            Some(created_at) => created_at.min(now) + rules.propagation + CREATED_AT_PRECISION,
            // No creation time: nothing says it is new, and every credential ever made was new
            // only for a few seconds.
            None => now,
        };
        Self { record, usable_at }
    }
}

/// Where the replicas agree on which credential is a holder's: Redis with `REDIS_URL`
/// (`super::redis::SharedRegistry`), nowhere without it ([`Unshared`]).
pub(super) trait Registry {
    /// Records `credential` as the holder's, unless another replica recorded one first.
    async fn claim(&mut self, credential: &KnownCredential) -> Claim;
}

pub(super) enum Claim {
    /// Recorded as the holder's; or nothing was, because a revocation moved the holder's state
    /// on meanwhile, which storing the token finds out.
    Ours,
    /// Another replica recorded this one first: it is the holder's.
    Theirs(KnownCredential),
    /// Nowhere to record it, or Redis did not answer: duplicates are settled at Telnyx.
    Unshared,
}

/// No registry: each replica settles duplicates at Telnyx, the oldest winning.
pub(super) struct Unshared;

impl Registry for Unshared {
    async fn claim(&mut self, _: &KnownCredential) -> Claim {
        Claim::Unshared
    }
}

/// The Telnyx calls for one user's credential, on one connection, under one set of rules.
pub(super) struct Lifecycle<'a> {
    pub telnyx: &'a TelnyxClient,
    pub connection_id: &'a str,
    pub rules: &'a Rules,
}

impl Lifecycle<'_> {
    /// A login token for the user's credential, `known` or else found or created, with its
    /// `expires_at` capped at the credential's. Waits, within `budget`, until the credential
    /// has propagated. `known` is left holding whatever was learnt, so a failed attempt does not
    /// have to list again.
    pub async fn token(
        &self,
        holder: &Holder,
        known: &mut Option<KnownCredential>,
        registry: &mut impl Registry,
        budget: &Budget,
    ) -> Result<(TelephonyCredential, LoginToken), CredentialError> {
        let now = SystemTime::now();
        let mut credential = match known.take() {
            Some(credential) if !credential.record.is_expired(now) => credential,
            Some(expired) => {
                self.delete_expired(&expired.record, budget).await;
                self.find_or_create(holder, registry, budget).await?
            }
            None => self.find_or_create(holder, registry, budget).await?,
        };
        let mut replaced = false;
        let token = loop {
            match self.extend_and_mint(&mut credential, budget).await {
                Ok(token) => break token,
                Err(TelnyxError::NotFound | TelnyxError::Rejected { .. }) if !replaced => {
                    tracing::info!(credential_id = %credential.record.id, "the user's telephony credential is gone or expired: finding or creating it again");
                    credential = self.find_or_create(holder, registry, budget).await?;
                    replaced = true;
                }
                Err(error) => {
                    *known = Some(credential);
                    return Err(error.into());
                }
            }
        };
        let result = self.wait_until_usable(&credential, budget).await;
        let record = credential.record.clone();
        *known = Some(credential);
        result.map(|()| (record, token))
    }

    /// Every credential so named at Telnyx, live or expired, for `DELETE /credentials`.
    pub async fn all(
        &self,
        name: &str,
        budget: &Budget,
    ) -> Result<Vec<TelephonyCredential>, CredentialError> {
        Ok(self
            .telnyx
            .list_credentials(Some(name), self.connection_id, budget)
            .await?)
    }

    /// Moves the credential's expiry forward when it is due, then mints a token capped at it.
    /// A `PATCH` that fails for want of Telnyx does not stop the mint: the credential still has
    /// at least half its idle period left, or no expiry at all.
    async fn extend_and_mint(
        &self,
        credential: &mut KnownCredential,
        budget: &Budget,
    ) -> Result<LoginToken, TelnyxError> {
        let now = SystemTime::now();
        if self
            .rules
            .due_for_extension(credential.record.expires_at, now)
        {
            let expires_at = self.rules.expiry_from(now);
            match self
                .telnyx
                .extend_credential(&credential.record.id, expires_at, budget)
                .await
            {
                Ok(updated) => {
                    credential.record = TelephonyCredential {
                        expires_at: updated.expires_at.or(Some(expires_at)),
                        ..updated
                    };
                    tracing::debug!(credential_id = %credential.record.id, "moved the credential's expiry forward");
                }
                Err(TelnyxError::Unavailable { cause, .. }) => {
                    tracing::warn!(credential_id = %credential.record.id, %cause, "could not move the credential's expiry forward; minting a token all the same");
                }
                Err(error) => return Err(error),
            }
        }
        let mut token = self
            .telnyx
            .create_login_token(&credential.record.id, budget)
            .await?;
        if let Some(expires_at) = credential.record.expires_at {
            token.expires_at = token.expires_at.min(expires_at);
        }
        Ok(token)
    }

    /// Sleeps until the credential has propagated, if that fits in the budget; else a 503 that
    /// tells the client when to come back (the credential is kept, so that request only mints).
    async fn wait_until_usable(
        &self,
        credential: &KnownCredential,
        budget: &Budget,
    ) -> Result<(), CredentialError> {
        let Ok(wait) = credential.usable_at.duration_since(SystemTime::now()) else {
            return Ok(());
        };
        if wait >= budget.remaining() {
            return Err(CredentialError::TelnyxUnavailable {
                cause: format!(
                    "the user's new telephony credential needs {} ms more to propagate at Telnyx than TELNYX_REQUEST_BUDGET_SECS leaves",
                    wait.as_millis()
                ),
                retry_after: Duration::from_secs(wait.as_secs() + 1),
            });
        }
        tracing::debug!(
            credential_id = %credential.record.id,
            wait_ms = wait.as_millis(),
            "waiting for the new credential to propagate before handing out a token for it"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The holder's oldest live credential on the connection, else a new one, tagged with the
    /// user's tag so that a listing by tag finds it with the user's others. A create that
    /// failed in a way that may hide a success (a timeout, a 5xx) is followed by another list,
    /// not by another create; two replicas that create one at the same moment settle on one
    /// ([`Lifecycle::settle`]), so the user ends up with one credential.
    async fn find_or_create(
        &self,
        holder: &Holder,
        registry: &mut impl Registry,
        budget: &Budget,
    ) -> Result<KnownCredential, CredentialError> {
        let name = &holder.credential_name();
        let mut listed_after_failure = false;
        loop {
            if let Some(found) = self.find(name, budget).await? {
                return Ok(match registry.claim(&found).await {
                    Claim::Theirs(recorded) => recorded,
                    Claim::Ours | Claim::Unshared => found,
                });
            }
            let now = SystemTime::now();
            let created = self
                .telnyx
                .create_credential(
                    name,
                    &holder.tag(),
                    self.connection_id,
                    self.rules.expiry_from(now),
                    budget,
                )
                .await;
            match created {
                Ok(created) => return Ok(self.settle(name, created, registry, budget).await),
                Err(TelnyxError::Unavailable { cause, .. }) if !listed_after_failure => {
                    tracing::warn!(%cause, "creating the user's telephony credential failed in a way that may hide a success: listing before creating again");
                    listed_after_failure = true;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The oldest live credential so named; expired ones met on the way are deleted.
    async fn find(
        &self,
        name: &str,
        budget: &Budget,
    ) -> Result<Option<KnownCredential>, CredentialError> {
        let now = SystemTime::now();
        let listed = self
            .telnyx
            .list_credentials(Some(name), self.connection_id, budget)
            .await?;
        let (expired, live): (Vec<_>, Vec<_>) = listed
            .into_iter()
            .partition(|credential| credential.is_expired(now));
        for credential in &expired {
            self.delete_expired(credential, budget).await;
        }
        Ok(oldest(live).map(|record| KnownCredential::listed(record, now, self.rules)))
    }

    /// After a create, if another replica created one too: with a registry, the first record
    /// wins and the loser deletes its own (Telnyx writes `created_at` to the second, so two
    /// creates within one second cannot be told apart by age). Without one, each replica keeps
    /// the oldest listed and deletes its own if it is not that one.
    async fn settle(
        &self,
        name: &str,
        created: TelephonyCredential,
        registry: &mut impl Registry,
        budget: &Budget,
    ) -> KnownCredential {
        let now = SystemTime::now();
        tracing::info!(credential_id = %created.id, sip_username = %created.sip_username, "created a telephony credential for the user");
        let ours = KnownCredential::created(created, now, self.rules);
        match registry.claim(&ours).await {
            Claim::Ours => return ours,
            // Another replica listed ours and recorded it first: it is still ours.
            Claim::Theirs(recorded) if recorded.record.id == ours.record.id => return recorded,
            Claim::Theirs(recorded) => {
                tracing::info!(kept = %recorded.record.id, "another instance recorded the user's credential first: deleting the one created here");
                self.delete_duplicate(&ours.record, budget).await;
                return recorded;
            }
            Claim::Unshared => {}
        }
        let Ok(listed) = self
            .telnyx
            .list_credentials(Some(name), self.connection_id, budget)
            .await
        else {
            return ours;
        };
        let live = listed
            .into_iter()
            .filter(|credential| !credential.is_expired(now));
        match oldest(live) {
            Some(keeper) if keeper.id != ours.record.id => {
                tracing::info!(kept = %keeper.id, "another instance created the user's credential at the same moment: keeping the older one");
                self.delete_duplicate(&ours.record, budget).await;
                KnownCredential::listed(keeper, now, self.rules)
            }
            _ => ours,
        }
    }

    async fn delete_duplicate(&self, credential: &TelephonyCredential, budget: &Budget) {
        if let Err(error) = self.telnyx.delete_credential(&credential.id, budget).await {
            tracing::warn!(credential_id = %credential.id, %error, "could not delete a duplicate telephony credential");
        }
    }

    /// Telnyx mints nothing for an expired credential and allows only deleting it; a failure
    /// here is logged and left for the next request or `prune`.
    async fn delete_expired(&self, credential: &TelephonyCredential, budget: &Budget) {
        match self.telnyx.delete_credential(&credential.id, budget).await {
            Ok(()) => {
                tracing::info!(credential_id = %credential.id, "deleted the user's expired telephony credential");
            }
            Err(error) => {
                tracing::warn!(credential_id = %credential.id, %error, "could not delete an expired telephony credential");
            }
        }
    }
}

/// The credential every instance agrees on: the earliest created, ties broken by id.
fn oldest(
    credentials: impl IntoIterator<Item = TelephonyCredential>,
) -> Option<TelephonyCredential> {
    credentials
        .into_iter()
        .min_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn credential(id: &str, created_at: Option<SystemTime>) -> TelephonyCredential {
        TelephonyCredential {
            id: id.into(),
            name: Some("supabase:u".into()),
            sip_username: format!("gencred{id}"),
            resource_id: Some("connection:1".into()),
            expired: false,
            created_at,
            updated_at: created_at,
            expires_at: None,
        }
    }

    #[test]
    fn the_oldest_credential_wins_and_ties_go_to_the_lower_id() {
        let at = |secs| Some(UNIX_EPOCH + Duration::from_secs(secs));
        let kept = oldest(vec![
            credential("b", at(2_000)),
            credential("c", at(1_000)),
            credential("a", at(1_000)),
        ]);
        assert_eq!(kept.unwrap().id, "a");
        assert!(oldest(Vec::new()).is_none());
    }

    #[test]
    fn a_listed_credential_waits_out_the_rest_of_its_propagation_but_never_more() {
        let rules = Rules {
            propagation: Duration::from_secs(5),
            idle: Duration::from_secs(86_400),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let young = KnownCredential::listed(
            credential("a", Some(now - Duration::from_secs(2))),
            now,
            &rules,
        );
        assert_eq!(young.usable_at, now + Duration::from_secs(4));
        let old = KnownCredential::listed(
            credential("b", Some(now - Duration::from_secs(3600))),
            now,
            &rules,
        );
        assert!(old.usable_at < now);
        // Telnyx's clock an hour ahead of ours.
        let skewed = KnownCredential::listed(
            credential("c", Some(now + Duration::from_secs(3600))),
            now,
            &rules,
        );
        assert_eq!(skewed.usable_at, now + Duration::from_secs(6));
        assert_eq!(
            KnownCredential::listed(credential("d", None), now, &rules).usable_at,
            now
        );
        let created = KnownCredential::created(credential("e", None), now, &rules);
        assert_eq!(created.usable_at, now + Duration::from_secs(5));
    }
}
