//! Paged listing of a tenant's interactions, oldest first, and the trimming of
//! its ended ones.
//!
//! Live interactions (queued, offered, assigned, pending) are indexed by
//! creation time in `live`; closed ones by the time they ended in `closed` (the
//! last 100,000, for the tenant's `history_retention_days`). The page token is
//! the last returned (score, id), so pages stay stable while interactions come
//! and go. Each batch of index entries is read back in one round trip.

use careline_proto::v1;

use crate::error::{Result, RoutingError};
use crate::keys;
use crate::store::RoutingStore;

/// Page size when the caller asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: usize = 500;
/// Index entries one call reads at most while filtering, whatever it finds.
const MAX_SCANNED: usize = 5_000;
/// Largest page in encoded bytes: well under the 4 MiB a gRPC client accepts by
/// default, whatever the notes and context of the interactions on it.
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;
/// Ended interactions removed per round trip by [`RoutingStore::trim_history`].
const TRIM_BATCH: usize = 500;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `None`: every live state.
    pub state: Option<v1::InteractionState>,
    pub queue: Option<String>,
    pub page_size: usize,
    pub page_token: String,
    /// Only interactions from this time on (ms since the epoch): created, for live
    /// states; ended, for ended ones.
    pub from_ms: Option<i64>,
    /// ...and up to this time, inclusive.
    pub to_ms: Option<i64>,
}

impl RoutingStore {
    /// One page of interactions and the token of the next page ("" at the end).
    pub async fn list_interactions(
        &self,
        tenant: &str,
        filter: &ListFilter,
    ) -> Result<(Vec<v1::Interaction>, String)> {
        use v1::InteractionState as S;
        let index = match filter.state {
            Some(S::Resolved | S::Abandoned | S::TransferredExternal) => "closed",
            _ => "live",
        };
        let (mut score, mut after_id) = parse_token(&filter.page_token)?;
        if let Some(from) = filter.from_ms
            && from > score
        {
            (score, after_id) = (from, String::new());
        }
        let until = filter
            .to_ms
            .map_or_else(|| "+inf".to_owned(), |to| to.to_string());
        let page_size = match filter.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let key = keys::tenant_key(tenant, index);
        let mut conn = self.connection();
        let mut page = Vec::new();
        let batch_size = page_size + 64;
        let mut scanned = 0;
        let mut page_bytes = 0;
        // Entries already seen that share the token's score come first (ties
        // are ordered by id); past a whole batch of them, skip by offset.
        let mut offset = 0;
        loop {
            let batch: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg(score)
                .arg(&until)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(offset)
                .arg(batch_size)
                .query_async(&mut conn)
                .await?;
            let full = batch.len() == batch_size;
            let fresh: Vec<(String, i64)> = batch
                .into_iter()
                .filter(|(id, s)| *s > score || id.as_str() > after_id.as_str())
                .collect();
            if fresh.is_empty() {
                if !full {
                    return Ok((page, String::new()));
                }
                offset += batch_size;
                continue;
            }
            offset = 0;
            let ids: Vec<&str> = fresh.iter().map(|(id, _)| id.as_str()).collect();
            let read = self.get_interactions(tenant, &ids).await?;
            for ((id, s), ix) in fresh.iter().zip(read) {
                scanned += 1;
                match ix {
                    Ok(ix) if matches(&ix, filter) => {
                        let size = prost::Message::encoded_len(&ix);
                        if !page.is_empty() && page_bytes + size > MAX_PAGE_BYTES {
                            // The page ends before this one: the token still names the last listed.
                            return Ok((page, format!("{score}:{after_id}")));
                        }
                        page_bytes += size;
                        page.push(ix);
                    }
                    Ok(_) | Err(RoutingError::NotFound(_)) => {}
                    // One damaged record must not hide the tenant's others.
                    Err(RoutingError::Corrupt(error)) => {
                        tracing::error!(%tenant, interaction_id = %id, %error, "corrupt interaction skipped in a listing");
                        metrics::counter!("careline_routing_corrupt_records_total", "tenant" => tenant.to_string()).increment(1);
                    }
                    Err(e) => return Err(e),
                }
                score = *s;
                after_id.clone_from(id);
                if page.len() == page_size || scanned == MAX_SCANNED {
                    return Ok((page, format!("{score}:{after_id}")));
                }
            }
        }
    }
}

impl RoutingStore {
    /// Removes `tenant`'s interactions that ended before `cutoff_ms` (ms since the
    /// epoch), with their notes and declines; returns how many. Idempotent, so
    /// replicas may trim at once.
    pub async fn trim_history(&self, tenant: &str, cutoff_ms: i64) -> Result<usize> {
        let key = keys::tenant_key(tenant, "closed");
        let mut conn = self.connection();
        let mut removed = 0;
        loop {
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({cutoff_ms}"))
                .arg("LIMIT")
                .arg(0)
                .arg(TRIM_BATCH)
                .query_async(&mut conn)
                .await?;
            if ids.is_empty() {
                return Ok(removed);
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                let record = keys::interaction(tenant, id);
                pipe.unlink(&[
                    record.clone(),
                    format!("{record}:declined"),
                    format!("{record}:notes"),
                ])
                .ignore();
            }
            pipe.zrem(&key, &ids).ignore();
            let () = pipe.query_async(&mut conn).await?;
            removed += ids.len();
            if ids.len() < TRIM_BATCH {
                return Ok(removed);
            }
        }
    }
}

fn matches(ix: &v1::Interaction, filter: &ListFilter) -> bool {
    filter.state.is_none_or(|s| ix.state == s as i32)
        && filter.queue.as_ref().is_none_or(|q| &ix.queue_id == q)
}

fn parse_token(token: &str) -> Result<(i64, String)> {
    if token.is_empty() {
        return Ok((0, String::new()));
    }
    let invalid = || {
        RoutingError::InvalidArgument(
            "page_token is invalid: pass back next_page_token unchanged".into(),
        )
    };
    let (score, id) = token.split_once(':').ok_or_else(invalid)?;
    Ok((score.parse().map_err(|_| invalid())?, id.to_string()))
}
