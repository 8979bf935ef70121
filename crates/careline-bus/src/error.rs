//! [`BusError`]: everything that can go wrong on the bus, phrased so the reader
//! knows what to fix.

use std::time::Duration;

use careline_domain::ConfigError;

/// A boxed source error from async-nats (its error types are generic per operation).
pub type NatsError = Box<dyn std::error::Error + Send + Sync>;

/// The error type of `careline-bus`.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A subject or consumer name part that NATS would misread.
    #[error("invalid {part} {value:?} in a bus subject: {reason}")]
    InvalidSubjectPart {
        /// Which part: `tenant`, `entity`, `event` or `consumer`.
        part: &'static str,
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A received subject that is not `careline.<tenant>.<entity>.<event>`.
    #[error(
        "subject {0:?} is not a careline event subject: expected careline.<tenant>.<entity>.<event>"
    )]
    ForeignSubject(String),

    /// An event without an id cannot be de-duplicated.
    #[error(
        "event has an empty event_id: set it to a unique id (\"<tenant_id>:<outbox entry id>\") so a retried publish is stored once"
    )]
    MissingEventId,

    /// An earlier event of an in-order batch failed, so this one may not be stored.
    #[error("event {0} may not be stored: an earlier event of its batch failed; publish it again")]
    NotSent(String),

    /// The event's tenant and the subject's tenant differ.
    #[error(
        "event {event_id} belongs to tenant {event_tenant:?} but the subject names tenant {subject_tenant:?}: \
         build the subject from the event's tenant_id"
    )]
    TenantMismatch {
        /// The event's id.
        event_id: String,
        /// `Event.tenant_id`.
        event_tenant: String,
        /// The tenant part of the subject.
        subject_tenant: String,
    },

    /// A payload that is not a `careline.v1.Event`.
    #[error(
        "message on {subject} is not a careline.v1.Event ({source}); it was terminated and will not be redelivered"
    )]
    Decode {
        /// Where it was received.
        subject: String,
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },

    /// A NATS or JetStream request failed.
    #[error(
        "NATS {action} failed: {source} (is nats-server running with JetStream (-js) and reachable?)"
    )]
    Nats {
        /// What was being done, e.g. `create stream CARELINE_EVENTS`.
        action: String,
        /// The client's error.
        #[source]
        source: NatsError,
    },

    /// A stream could not be created or updated with more than one replica.
    #[error(
        "NATS cannot keep stream {stream} on {replicas} servers: {source}. JetStream needs a cluster of \
         at least {replicas} servers for that: set CARELINE_NATS_REPLICAS (--nats-replicas) to at most \
         the number of JetStream servers (1 for a single nats-server)"
    )]
    Replicas {
        /// The stream, e.g. `CARELINE_EVENTS` or `KV_careline-tenants`.
        stream: String,
        /// The replica count asked for.
        replicas: usize,
        /// The client's error.
        #[source]
        source: NatsError,
    },

    /// A tenant configuration that fails validation; nothing was written.
    #[error("tenant configuration {tenant:?} is invalid, nothing was written:\n{source}")]
    InvalidTenantConfig {
        /// The tenant id in the rejected configuration.
        tenant: String,
        /// Every problem found.
        #[source]
        source: ConfigError,
    },

    /// A value in the tenant bucket that is not a valid configuration.
    #[error(
        "tenant bucket key {key:?} holds an invalid configuration (rewrite it with `careline config apply`):\n{source}"
    )]
    StoredTenantConfig {
        /// The bucket key.
        key: String,
        /// Every problem found.
        #[source]
        source: ConfigError,
    },

    /// A tenant whose stored form does not fit in the NATS server's messages.
    #[error(
        "tenant {tenant:?} does not fit in a NATS message: {what} takes {bytes} bytes stored, \
         more than this NATS server's max_payload of {max_payload} bytes allows; nothing was written. \
         Careline's own limits keep every part under 300 KiB: raise max_payload in the nats-server \
         configuration to at least {needed} (its default, 1 MiB, is enough)"
    )]
    TenantTooLarge {
        /// The tenant id.
        tenant: String,
        /// The part that does not fit: an agent, or the tenant without its agents.
        what: String,
        /// Its stored size.
        bytes: usize,
        /// The server's largest message.
        max_payload: usize,
        /// The smallest max_payload that would take it.
        needed: usize,
    },

    /// Other writers kept replacing a tenant while it was being written or read.
    #[error(
        "tenant {tenant:?} changed {attempts} times while being {action} (another `careline config apply` \
         or the operator writing it at the same time): try again"
    )]
    TenantContended {
        /// The tenant id.
        tenant: String,
        /// `written` or `read`.
        action: &'static str,
        /// How many times it was tried.
        attempts: usize,
    },

    /// [`TenantDirectory::wait_for`](crate::TenantDirectory::wait_for) gave up.
    #[error(
        "tenant {tenant:?} did not appear in the tenant directory within {waited:?}: apply its configuration first"
    )]
    TenantNotLoaded {
        /// The tenant waited for.
        tenant: String,
        /// How long it waited.
        waited: Duration,
    },
}

impl BusError {
    /// Wraps an async-nats error with what was being done: `.map_err(BusError::nats("..."))`.
    pub(crate) fn nats<E>(action: impl Into<String>) -> impl FnOnce(E) -> BusError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let action = action.into();
        move |source| BusError::Nats {
            action,
            source: Box::new(source),
        }
    }

    /// Like [`BusError::nats`] for the already boxed `async_nats::Error`.
    pub(crate) fn nats_boxed(action: impl Into<String>) -> impl FnOnce(NatsError) -> BusError {
        let action = action.into();
        move |source| BusError::Nats { action, source }
    }
}
