//! JetStream set-up every service runs at start: the event stream and durable
//! pull consumers for work queues.
//!
//! Several replicas start at once and restart often, so everything here is
//! "create or update" and safe to run concurrently and repeatedly.
//!
//! On a NATS cluster a stream is kept on `replicas` servers (R3 survives one
//! server dying). The count is set per deployment (`CARELINE_NATS_REPLICAS`):
//! when given, streams are created with it and existing streams are updated to
//! it (JetStream moves the data); when not given, an existing stream keeps the
//! count it has and a new one gets [`DEFAULT_REPLICAS`], so a tool run without
//! the setting never shrinks a replicated stream.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::BusError;
use crate::subject::{SubjectFilter, check_part};

/// The stream holding every Careline event (`careline.>`).
pub const EVENTS_STREAM: &str = "CARELINE_EVENTS";
/// A re-publish with the same `Nats-Msg-Id` within this window is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60);
/// How long events are kept unless configured otherwise.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Deliveries of one message to a work-queue consumer before it is given up on.
pub const DEFAULT_MAX_DELIVER: i64 = 5;
/// Time a work-queue consumer has to ack before the message is redelivered.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// Replicas of a new stream when none are configured: one server, as a single nats-server needs.
pub const DEFAULT_REPLICAS: usize = 1;
/// Most replicas a JetStream stream may have.
pub const MAX_REPLICAS: usize = 5;
/// Concurrent creators can race (both see "not found", one create loses); retry that many times.
const CREATE_ATTEMPTS: usize = 3;
/// A cluster may briefly count a busy server as offline and refuse to place
/// a replicated stream; that refusal is tried again this many times...
const PLACEMENT_ATTEMPTS: usize = 10;
/// ... this long apart, before it is reported.
const PLACEMENT_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Settings of the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Events older than this are dropped.
    pub max_age: Duration,
    /// Servers that keep a copy; `None` keeps an existing stream's count (see the module doc).
    pub replicas: Option<usize>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            replicas: None,
        }
    }
}

/// Creates or updates the event stream with default settings.
pub async fn ensure_streams(js: &jetstream::Context) -> Result<stream::Stream, BusError> {
    ensure_streams_with(js, &StreamSettings::default()).await
}

/// Creates or updates the event stream `CARELINE_EVENTS` over `careline.>`, and the
/// access audit stream (see [`crate::audit`]).
pub async fn ensure_streams_with(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, BusError> {
    let config = stream::Config {
        name: EVENTS_STREAM.to_owned(),
        description: Some("Every Careline event, by careline.<tenant>.<entity>.<event>".into()),
        subjects: vec![SubjectFilter::all().as_str().to_owned()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: settings.max_age,
        // Quality reviews are kept for their tenant's retention, not the log's.
        allow_message_ttl: true,
        // The relay publishes long batches atomically (see `Publisher::publish_in_order`);
        // an existing stream gains the setting on its next update.
        allow_atomic_publish: true,
        ..Default::default()
    };
    let events = create_or_update(js, config, settings.replicas).await?;
    crate::audit::ensure_audit_stream(js, settings.replicas).await?;
    Ok(events)
}

/// Creates the stream `config` describes or updates it to `config`, kept on
/// `replicas` servers (`None`: as many as it has now, [`DEFAULT_REPLICAS`] if new).
pub(crate) async fn create_or_update(
    js: &jetstream::Context,
    mut config: stream::Config,
    replicas: Option<usize>,
) -> Result<stream::Stream, BusError> {
    let name = config.name.clone();
    let mut attempt = 1;
    let before = loop {
        match create_or_update_once(js, &mut config, replicas).await {
            Ok(before) => break before,
            Err(err @ BusError::Replicas { .. }) if attempt < PLACEMENT_ATTEMPTS => {
                tracing::warn!(stream = %name, attempt, error = %err, "JetStream could not place the stream's replicas; trying again");
                tokio::time::sleep(PLACEMENT_PAUSE).await;
                attempt += 1;
            }
            Err(_) if attempt < CREATE_ATTEMPTS => attempt += 1,
            Err(err) => return Err(err),
        }
    };
    if let Some(before) = before
        && before != config.num_replicas
    {
        tracing::warn!(
            stream = %name,
            from = before,
            to = config.num_replicas,
            "changed the stream's replica count as configured (CARELINE_NATS_REPLICAS); \
             JetStream copies or drops its data on the servers concerned"
        );
    }
    js.get_stream(&name)
        .await
        .map_err(BusError::nats(format!("get stream {name}")))
}

/// One attempt of [`create_or_update`]; returns the replica count the stream
/// had before, `None` if it was created.
async fn create_or_update_once(
    js: &jetstream::Context,
    config: &mut stream::Config,
    replicas: Option<usize>,
) -> Result<Option<usize>, BusError> {
    let name = config.name.clone();
    // Only "not found" means new: taking any failure for it would, with the
    // setting unset, shrink a replicated stream to one copy.
    let before = match js.get_stream(&name).await {
        Ok(stream) => Some(stream.cached_info().config.num_replicas),
        Err(err) if is_not_found(&err) => None,
        Err(err) => return Err(BusError::nats(format!("read stream {name}"))(err)),
    };
    config.num_replicas = replicas.or(before).unwrap_or(DEFAULT_REPLICAS);
    match js.create_or_update_stream(config.clone()).await {
        Ok(_) => Ok(before),
        Err(err) if too_few_servers(&err) => Err(BusError::Replicas {
            stream: name,
            replicas: config.num_replicas,
            source: Box::new(err),
        }),
        Err(err) => Err(BusError::nats(format!("create or update stream {name}"))(
            err,
        )),
    }
}

fn is_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(err)
            if err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Whether JetStream refused a stream because it has too few servers for its replicas.
fn too_few_servers(error: &jetstream::context::CreateStreamError) -> bool {
    use jetstream::ErrorCode;
    matches!(
        error.kind(),
        jetstream::context::CreateStreamErrorKind::JetStream(err)
            if [
                ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
                ErrorCode::INSUFFICIENT_RESOURCES,
                ErrorCode::CLUSTER_NO_PEERS,
            ]
            .contains(&err.error_code())
    )
}

/// Settings of a durable work-queue consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkQueueSettings {
    /// Time to ack before redelivery.
    pub ack_wait: Duration,
    /// Deliveries before the server stops redelivering (then: dead-letter it).
    pub max_deliver: i64,
}

impl Default for WorkQueueSettings {
    fn default() -> Self {
        Self {
            ack_wait: DEFAULT_ACK_WAIT,
            max_deliver: DEFAULT_MAX_DELIVER,
        }
    }
}

/// Creates (or finds) the durable pull consumer `durable` on the event stream,
/// reading `filter` with explicit acks and bounded redelivery.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    durable: &str,
    filter: &SubjectFilter,
    settings: &WorkQueueSettings,
) -> Result<consumer::PullConsumer, BusError> {
    ensure_consumer_of_all(js, durable, std::slice::from_ref(filter), settings).await
}

/// [`ensure_consumer`] reading every subject of `filters` (e.g. several
/// events of one entity, without the others between them).
pub async fn ensure_consumer_of_all(
    js: &jetstream::Context,
    durable: &str,
    filters: &[SubjectFilter],
    settings: &WorkQueueSettings,
) -> Result<consumer::PullConsumer, BusError> {
    check_part("consumer", durable)?;
    // One filter stays `filter_subject`, as consumers created before were.
    let (filter_subject, filter_subjects) = match filters {
        [one] => (one.as_str().to_owned(), Vec::new()),
        several => (
            String::new(),
            several.iter().map(|f| f.as_str().to_owned()).collect(),
        ),
    };
    let config = consumer::pull::Config {
        durable_name: Some(durable.to_owned()),
        filter_subject,
        filter_subjects,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_deliver: settings.max_deliver,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let action = format!("create consumer {durable} on stream {EVENTS_STREAM}");
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(BusError::nats(format!(
            "{action} (run ensure_streams first)"
        )))?;
    let mut attempt = 1;
    loop {
        match stream.create_consumer(config.clone()).await {
            Ok(consumer) => return Ok(consumer),
            Err(_) if attempt < CREATE_ATTEMPTS => attempt += 1,
            Err(err) => return Err(BusError::nats(action)(err)),
        }
    }
}
