//! [`Error`]: why a reconcile failed and will be retried. A resource whose configuration
//! is invalid is not an error: it is reported in its status and left until it changes.

use careline_bus::BusError;

/// What stopped a reconcile; the controller retries after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Reading or writing the configuration bucket failed (NATS unreachable?).
    #[error("configuration bucket: {0}")]
    Bus(#[from] BusError),
    /// Adding or removing the finalizer, or the work it guards, failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Bus(_) => "bus",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
        }
    }
}
