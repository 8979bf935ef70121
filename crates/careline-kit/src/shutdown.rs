//! Graceful shutdown as a value passed down to every task (mini-redis style), not a global.
//!
//! A [`Shutdown`] wraps a [`CancellationToken`]: `main` creates one with
//! [`Shutdown::on_signals`], hands clones (or [`Shutdown::child`]ren) to each service, and each
//! server stops accepting work and drains when it fires. `careline up` gives every service a
//! child so one service can also be stopped on its own.

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A shutdown signal shared by a group of tasks. Cloning shares the same signal.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A signal that fires only when [`Shutdown::trigger`] is called (tests, embedding).
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps an existing token.
    pub fn from_token(token: CancellationToken) -> Self {
        Self { token }
    }

    /// A signal that fires on SIGTERM or Ctrl-C (SIGINT). Must be called inside a tokio runtime;
    /// the listening task ends when the signal fires, whatever fired it.
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let token = shutdown.token.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = os_signal() => {
                    tracing::info!("shutdown signal received, draining");
                    token.cancel();
                }
                () = token.cancelled() => {}
            }
        });
        shutdown
    }

    /// The underlying token, for APIs that take a [`CancellationToken`].
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Fires the signal for this group and all its children.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A future that completes when the signal fires; owns its token, so it can be moved into
    /// a spawned task or handed to a server as its shutdown future.
    pub fn wait(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    /// A signal that fires when this one fires, and can also be fired on its own without
    /// affecting this one.
    pub fn child(&self) -> Shutdown {
        Self {
            token: self.token.child_token(),
        }
    }
}

/// Completes on the first Ctrl-C or SIGTERM.
async fn os_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn child_fires_with_parent_but_not_the_other_way() {
        let parent = Shutdown::new();
        let child = parent.child();
        child.trigger();
        assert!(child.is_triggered());
        assert!(!parent.is_triggered());

        let other_child = parent.child();
        let waiting = tokio::spawn(other_child.wait());
        parent.trigger();
        waiting
            .await
            .expect("wait future completes once the parent fires");
        assert!(other_child.is_triggered());
    }
}
