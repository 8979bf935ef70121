//! JetStream set-up every service runs at start: the event stream and durable
//! pull consumers for work queues.
//!
//! Several replicas start at once and restart often, so everything here is
//! "create or update" and safe to run concurrently and repeatedly.

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
/// Concurrent creators can race (both see "not found", one create loses); retry that many times.
const CREATE_ATTEMPTS: usize = 3;

/// Settings of the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Events older than this are dropped.
    pub max_age: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Creates or updates the event stream with default settings.
pub async fn ensure_streams(js: &jetstream::Context) -> Result<stream::Stream, BusError> {
    ensure_streams_with(js, &StreamSettings::default()).await
}

/// Creates or updates the event stream `CARELINE_EVENTS` over `careline.>`.
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
        ..Default::default()
    };
    let mut attempt = 1;
    loop {
        match js.create_or_update_stream(config.clone()).await {
            Ok(_) => break,
            Err(_) if attempt < CREATE_ATTEMPTS => attempt += 1,
            Err(err) => {
                return Err(BusError::nats(format!(
                    "create or update stream {EVENTS_STREAM}"
                ))(err));
            }
        }
    }
    js.get_stream(EVENTS_STREAM)
        .await
        .map_err(BusError::nats(format!("get stream {EVENTS_STREAM}")))
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
    check_part("consumer", durable)?;
    let config = consumer::pull::Config {
        durable_name: Some(durable.to_owned()),
        filter_subject: filter.as_str().to_owned(),
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
