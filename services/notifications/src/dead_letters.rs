//! The dead-letter operations behind the gRPC API, free of tonic: list a
//! tenant's dead letters, and replay one through the work queue.

use async_nats::jetstream;
use careline_proto::v1::DeadLetter;

use crate::error::NotificationError;
use crate::ledger::Ledger;
use crate::validate;

/// A tenant's dead letters.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    pub(crate) ledger: Ledger,
    pub(crate) js: jetstream::Context,
}

impl DeadLetters {
    /// The oldest `page_size` dead letters of `tenant` (0: the default page).
    pub async fn list(
        &self,
        tenant: &str,
        page_size: u32,
    ) -> Result<Vec<DeadLetter>, NotificationError> {
        let limit = validate::page_size(page_size)?;
        self.ledger.dead_letters(tenant, limit).await
    }

    /// Sends dead letter `id` again: the same request (same Message-ID) goes
    /// back on the work queue; the dead letter is removed once it is there.
    pub async fn replay(&self, tenant: &str, id: &str) -> Result<(), NotificationError> {
        validate::notification_id(id)?;
        let Some((version, request)) = self.ledger.revive(tenant, id).await? else {
            return Err(NotificationError::NotFound(format!(
                "notification {id} is not a dead letter of this tenant (ListDeadLetters shows them)"
            )));
        };
        // A dedupe id of its own (the original id may still be in the duplicate
        // window), stable per dead-lettering so two replays publish once.
        let msg_id = format!("{id}:replay:{version}");
        careline_bus::notification::publish_request(&self.js, &request, &msg_id).await?;
        self.ledger.forget(tenant, id, &version).await?;
        tracing::info!(notification_id = %id, "dead letter replayed");
        Ok(())
    }
}
