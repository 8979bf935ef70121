//! The `careline.v1.Router` gRPC adapter: authenticate the tenant, validate,
//! call the routing store, map errors (see `error.rs`).

use std::pin::Pin;
use std::sync::Arc;

use careline_bus::TenantDirectory;
use careline_bus::audit::AuditLog;
use careline_domain::tenant::{Scope, TenantConfig};
use careline_kit::Shutdown;
use careline_proto::v1;
use careline_proto::v1::router_server::Router;
use careline_routing::{ListFilter, RoutingStore, TransferTarget};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::RouterError;
use crate::{intake, validate};

/// Where "now" comes from (tests pin it to check business hours).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Which of the tenant's request budgets (`limits`) a call spends.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// `CreateInteraction`.
    Creates,
    /// Every other call; a watch spends one when it opens.
    Calls,
}

/// Buffered events per watcher before the slowest one is cut off.
const WATCH_BUFFER: usize = 256;

/// Scopes of the RPCs: intake integrations create and follow their contacts,
/// CRM integrations act for agents, supervisors read.
const INTAKE: &[Scope] = &[Scope::Intake];
const AGENT_ACTIONS: &[Scope] = &[Scope::AgentActions];
const SUPERVISOR: &[Scope] = &[Scope::Supervisor];
/// Reading a contact: supervisors, and CRM integrations acting on it for an agent.
const READ_CONTACT: &[Scope] = &[Scope::Supervisor, Scope::AgentActions];
/// Following one contact: the intake that created it (an IVR, the chat widget) too.
const WATCH_CONTACT: &[Scope] = &[Scope::Intake, Scope::Supervisor, Scope::AgentActions];

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Router service.
#[derive(Clone)]
pub struct RouterService {
    pub(crate) store: RoutingStore,
    pub(crate) tenants: Arc<TenantDirectory>,
    pub(crate) nats: async_nats::Client,
    pub(crate) shutdown: Shutdown,
    /// The tasks feeding watch streams; `serve` waits for them after shutdown.
    pub(crate) watchers: TaskTracker,
    /// `WatchInteraction` hubs, one per watched tenant.
    pub(crate) watches: crate::watch::Watches,
    /// `WatchQueueStats` feeds, one per watched tenant and queue filter.
    pub(crate) stats: crate::stats_feed::StatsFeeds,
    /// Slots for `WatchQueueStats` and `WatchInteractions` streams on this replica.
    pub(crate) supervisor_streams: StreamSlots,
    /// Where reads of contact content are recorded.
    pub(crate) audit: AuditLog,
    pub(crate) clock: Clock,
}

/// A per-replica cap on long-lived streams: a stream holds its slot until its task ends.
#[derive(Clone)]
pub(crate) struct StreamSlots {
    slots: Arc<tokio::sync::Semaphore>,
    max: u32,
}

impl StreamSlots {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(max as usize)),
            max,
        }
    }

    /// A slot, or RESOURCE_EXHAUSTED naming the limit when every slot is taken.
    fn take(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this router replica already serves its maximum of {} supervisor streams \
                 (CARELINE_ROUTER_MAX_SUPERVISOR_STREAMS); close one, or retry on another replica",
                self.max
            ))
        })
    }
}

impl RouterService {
    fn tenant<T>(
        &self,
        request: &Request<T>,
        needed: &[Scope],
    ) -> Result<Arc<TenantConfig>, Status> {
        let tenant = careline_kit::authorize(request, needed)?;
        tracing::Span::current().record("tenant", tenant.as_str());
        self.tenants
            .get(&tenant)
            .ok_or_else(|| RouterError::UnknownTenant(tenant).into())
    }

    /// The caller's tenant, once its key has shown one of the `needed` scopes and the
    /// call has taken a token from the tenant's `budget` (see `limits` in the tenant
    /// configuration).
    async fn admit<T>(
        &self,
        request: &Request<T>,
        budget: Budget,
        needed: &[Scope],
    ) -> Result<Arc<TenantConfig>, Status> {
        let config = self.tenant(request, needed)?;
        let limits = config.limits;
        let (name, per_sec, burst) = match budget {
            Budget::Creates => ("creates", limits.creates_per_sec, limits.creates_burst),
            Budget::Calls => ("calls", limits.calls_per_sec, limits.calls_burst),
        };
        let wait = self
            .store
            .take_token(&config.id, name, per_sec, burst)
            .await
            .map_err(RouterError::from)?;
        match wait {
            None => Ok(config),
            Some(retry_after) => Err(RouterError::RateLimited {
                what: name,
                per_sec,
                retry_after,
            }
            .into()),
        }
    }

    /// Records that API key `key_id` read `ids` of `tenant` (see
    /// [`careline_kit::auth::record_read`]).
    async fn audit_read(
        &self,
        key_id: &str,
        tenant: &str,
        method: &str,
        ids: Vec<String>,
    ) -> Result<(), Status> {
        careline_kit::auth::record_read(&self.audit, key_id, tenant, method, ids).await
    }

    async fn interaction(&self, tenant: &str, id: &str) -> Result<v1::Interaction, Status> {
        Ok(self
            .store
            .get_interaction(tenant, id)
            .await
            .map_err(RouterError::from)?)
    }

    fn note(
        &self,
        agent: &str,
        text: &str,
        kind: v1::NoteKind,
    ) -> Result<Option<v1::Note>, Status> {
        validate::notes(text)?;
        Ok((!text.is_empty()).then(|| v1::Note {
            agent_id: agent.to_string(),
            text: text.to_string(),
            kind: kind as i32,
            created_at_ms: (self.clock)().timestamp_millis(),
        }))
    }
}

fn record_interaction(id: &str) {
    tracing::Span::current().record("interaction_id", id);
}

#[tonic::async_trait]
impl Router for RouterService {
    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn create_interaction(
        &self,
        request: Request<v1::CreateInteractionRequest>,
    ) -> Result<Response<v1::CreateInteractionResponse>, Status> {
        let config = self.admit(&request, Budget::Creates, INTAKE).await?;
        let now = (self.clock)();
        let create = validate::create(&config, request.into_inner(), now.timestamp_millis())?;
        let created = intake::create_interaction(&self.store, &config, create, now).await?;
        record_interaction(&created.interaction_id);
        metrics::counter!("careline_interactions_created_total", "tenant" => config.id.clone())
            .increment(u64::from(!created.replayed));
        let interaction = self
            .interaction(&config.id, &created.interaction_id)
            .await?;
        Ok(Response::new(v1::CreateInteractionResponse {
            interaction: Some(interaction),
            queue_position: created.queue_position,
            replayed: created.replayed,
        }))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn get_interaction(
        &self,
        request: Request<v1::GetInteractionRequest>,
    ) -> Result<Response<v1::Interaction>, Status> {
        let config = self.admit(&request, Budget::Calls, READ_CONTACT).await?;
        let id = validate::interaction_id(&request.get_ref().interaction_id)?;
        record_interaction(&id);
        let interaction = self.interaction(&config.id, &id).await?;
        self.audit_read(
            &careline_kit::auth::key_id(&request),
            &config.id,
            "careline.v1.Router/GetInteraction",
            vec![id],
        )
        .await?;
        Ok(Response::new(interaction))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn list_interactions(
        &self,
        request: Request<v1::ListInteractionsRequest>,
    ) -> Result<Response<v1::ListInteractionsResponse>, Status> {
        let config = self.admit(&request, Budget::Calls, SUPERVISOR).await?;
        let reader = careline_kit::auth::key_id(&request);
        let request = request.into_inner();
        let state = match request.state {
            0 => None,
            value => Some(
                v1::InteractionState::try_from(value)
                    .map_err(|_| Status::invalid_argument("state: unknown value"))?,
            ),
        };
        let queue = match request.queue_id.as_str() {
            "" => None,
            id => Some(validate::queue(&config, "queue_id", id)?),
        };
        let (from_ms, to_ms) = validate::time_range(request.from_ms, request.to_ms)?;
        let page = request.page.unwrap_or_default();
        let filter = ListFilter {
            state,
            queue,
            page_size: page.page_size as usize,
            page_token: page.page_token,
            from_ms,
            to_ms,
        };
        let (interactions, next) = self
            .store
            .list_interactions(&config.id, &filter)
            .await
            .map_err(RouterError::from)?;
        let ids = interactions.iter().map(|ix| ix.id.clone()).collect();
        self.audit_read(
            &reader,
            &config.id,
            "careline.v1.Router/ListInteractions",
            ids,
        )
        .await?;
        Ok(Response::new(v1::ListInteractionsResponse {
            interactions,
            page: Some(v1::PageResponse {
                next_page_token: next,
            }),
        }))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn accept_offer(
        &self,
        request: Request<v1::AcceptOfferRequest>,
    ) -> Result<Response<v1::Interaction>, Status> {
        let config = self.admit(&request, Budget::Calls, AGENT_ACTIONS).await?;
        let offer = validate::offer_id(&request.get_ref().offer_id)?;
        let agent = validate::agent_id(&config, "agent_id", &request.get_ref().agent_id)?;
        let id = self
            .store
            .accept_offer(&config.id, &offer, &agent)
            .await
            .map_err(RouterError::from)?;
        record_interaction(&id);
        Ok(Response::new(self.interaction(&config.id, &id).await?))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn reject_offer(
        &self,
        request: Request<v1::RejectOfferRequest>,
    ) -> Result<Response<v1::RejectOfferResponse>, Status> {
        let config = self.admit(&request, Budget::Calls, AGENT_ACTIONS).await?;
        let offer = validate::offer_id(&request.get_ref().offer_id)?;
        let agent = validate::agent_id(&config, "agent_id", &request.get_ref().agent_id)?;
        let id = self
            .store
            .reject_offer(&config.id, &offer, &agent)
            .await
            .map_err(RouterError::from)?;
        record_interaction(&id);
        Ok(Response::new(v1::RejectOfferResponse {}))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn transfer(
        &self,
        request: Request<v1::TransferRequest>,
    ) -> Result<Response<v1::Interaction>, Status> {
        let config = self.admit(&request, Budget::Calls, AGENT_ACTIONS).await?;
        let request = request.into_inner();
        let id = validate::interaction_id(&request.interaction_id)?;
        record_interaction(&id);
        let agent = validate::agent_id(&config, "agent_id", &request.agent_id)?;
        let target = match request.target {
            Some(v1::transfer_request::Target::QueueId(queue)) => {
                TransferTarget::Queue(validate::queue(&config, "queue_id", &queue)?)
            }
            Some(v1::transfer_request::Target::ToAgentId(to)) => {
                let interaction = self.interaction(&config.id, &id).await?;
                TransferTarget::Agent(validate::transfer_to_agent(
                    &config,
                    &agent,
                    &to,
                    &interaction,
                )?)
            }
            Some(v1::transfer_request::Target::ExternalDestination(destination)) => {
                validate::destination(&destination)?;
                TransferTarget::External(destination)
            }
            None => {
                return Err(Status::invalid_argument(
                    "a target is required: queue_id, to_agent_id or external_destination",
                ));
            }
        };
        let note = self.note(&agent, &request.notes, v1::NoteKind::Transfer)?;
        self.store
            .transfer(&config.id, &id, &agent, &target, note.as_ref())
            .await
            .map_err(RouterError::from)?;
        Ok(Response::new(self.interaction(&config.id, &id).await?))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn set_pending(
        &self,
        request: Request<v1::SetPendingRequest>,
    ) -> Result<Response<v1::Interaction>, Status> {
        let config = self.admit(&request, Budget::Calls, AGENT_ACTIONS).await?;
        let request = request.into_inner();
        let id = validate::interaction_id(&request.interaction_id)?;
        record_interaction(&id);
        let agent = validate::agent_id(&config, "agent_id", &request.agent_id)?;
        validate::pending_until(request.until_ms, (self.clock)().timestamp_millis())?;
        let note = self.note(&agent, &request.notes, v1::NoteKind::Pending)?;
        self.store
            .set_pending(
                &config.id,
                &id,
                &agent,
                request.until_ms,
                request.return_to_queue,
                note.as_ref(),
            )
            .await
            .map_err(RouterError::from)?;
        Ok(Response::new(self.interaction(&config.id, &id).await?))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn resolve(
        &self,
        request: Request<v1::ResolveRequest>,
    ) -> Result<Response<v1::Interaction>, Status> {
        let config = self.admit(&request, Budget::Calls, AGENT_ACTIONS).await?;
        let request = request.into_inner();
        let id = validate::interaction_id(&request.interaction_id)?;
        record_interaction(&id);
        let agent = validate::agent_id(&config, "agent_id", &request.agent_id)?;
        validate::resolution(&request.disposition, &request.outcome_tags)?;
        let note = self.note(&agent, &request.notes, v1::NoteKind::Resolution)?;
        self.store
            .resolve(
                &config.id,
                &id,
                &agent,
                &request.disposition,
                &request.outcome_tags,
                note.as_ref(),
            )
            .await
            .map_err(RouterError::from)?;
        Ok(Response::new(self.interaction(&config.id, &id).await?))
    }

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn abandon(
        &self,
        request: Request<v1::AbandonRequest>,
    ) -> Result<Response<v1::Interaction>, Status> {
        let config = self.admit(&request, Budget::Calls, INTAKE).await?;
        let id = validate::interaction_id(&request.get_ref().interaction_id)?;
        record_interaction(&id);
        self.store
            .abandon(&config.id, &id)
            .await
            .map_err(RouterError::from)?;
        Ok(Response::new(self.interaction(&config.id, &id).await?))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn get_queue_stats(
        &self,
        request: Request<v1::GetQueueStatsRequest>,
    ) -> Result<Response<v1::GetQueueStatsResponse>, Status> {
        let config = self.admit(&request, Budget::Calls, SUPERVISOR).await?;
        let queue = match request.get_ref().queue_id.as_str() {
            "" => None,
            id => Some(validate::queue(&config, "queue_id", id)?),
        };
        let stats = self
            .store
            .queue_stats(&config, queue.as_deref())
            .await
            .map_err(RouterError::from)?;
        Ok(Response::new(stats))
    }

    type WatchQueueStatsStream = EventStream<v1::GetQueueStatsResponse>;

    #[instrument(skip_all, fields(tenant))]
    async fn watch_queue_stats(
        &self,
        request: Request<v1::WatchQueueStatsRequest>,
    ) -> Result<Response<Self::WatchQueueStatsStream>, Status> {
        let config = self.admit(&request, Budget::Calls, SUPERVISOR).await?;
        let queue = match request.get_ref().queue_id.as_str() {
            "" => None,
            id => Some(validate::queue(&config, "queue_id", id)?),
        };
        let slot = self.supervisor_streams.take()?;
        let mut updates = self.stats.subscribe(&config.id, queue);
        let (tx, rx) = mpsc::channel(1);
        let shutdown = self.shutdown.clone();
        self.watchers.spawn(async move {
            let _slot = slot;
            loop {
                let latest = updates.borrow_and_update().clone();
                if let Some(item) = latest {
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tx.closed() => return,
                    changed = updates.changed() => if changed.is_err() { return },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchInteractionStream = EventStream<v1::InteractionStatus>;

    #[instrument(skip_all, fields(tenant, interaction_id))]
    async fn watch_interaction(
        &self,
        request: Request<v1::WatchInteractionRequest>,
    ) -> Result<Response<Self::WatchInteractionStream>, Status> {
        let config = self.admit(&request, Budget::Calls, WATCH_CONTACT).await?;
        let id = validate::interaction_id(&request.get_ref().interaction_id)?;
        record_interaction(&id);
        let statuses = self.watches.watch(&config.id, &id).await?;
        Ok(Response::new(Box::pin(ReceiverStream::new(statuses))))
    }

    type WatchInteractionsStream = EventStream<v1::Event>;

    #[instrument(skip_all, fields(tenant))]
    async fn watch_interactions(
        &self,
        request: Request<v1::WatchInteractionsRequest>,
    ) -> Result<Response<Self::WatchInteractionsStream>, Status> {
        let config = self.admit(&request, Budget::Calls, SUPERVISOR).await?;
        let slot = self.supervisor_streams.take()?;
        let subject = format!("careline.{}.interaction.>", config.id);
        let mut subscription = self
            .nats
            .subscribe(subject)
            .await
            .map_err(|_| Status::unavailable("event bus is unavailable right now; retry"))?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let shutdown = self.shutdown.clone();
        self.watchers.spawn(async move {
            let _slot = slot;
            loop {
                let message = tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tx.closed() => break,
                    message = subscription.next() => message,
                };
                let Some(message) = message else { break };
                match v1::Event::decode(message.payload) {
                    Ok(event) => {
                        // Handing the event to the supervisor continues its
                        // (the contact's) trace.
                        let span = tracing::info_span!(
                            "router.watch_interactions",
                            tenant = %event.tenant_id,
                            event_id = %event.event_id,
                        );
                        careline_bus::trace_context::set_parent_from(
                            &span,
                            message.headers.as_ref(),
                        );
                        let full = span.in_scope(|| tx.try_send(Ok(event)).is_err());
                        if full {
                            let _ = tx
                                .send(Err(Status::resource_exhausted(
                                    "watcher fell behind; reconnect and re-read state with ListInteractions",
                                )))
                                .await;
                            break;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "undecodable event skipped"),
                }
            }
            let _ = subscription.unsubscribe().await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
