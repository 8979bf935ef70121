//! Taking a new interaction in: urgent contacts jump to the top priority (and
//! the tenant's clinical queue, if it has one); outside business hours voice
//! is refused with the hours and other ways to get help, email and chat are
//! accepted and flagged `after_hours`.

use careline_domain::tenant::TenantConfig;
use careline_domain::{Channel, Priority};
use careline_routing::{Created, NewInteraction, RoutingStore};
use chrono::{DateTime, Utc};

use crate::error::{OutsideHours, RouterError};

/// Applies the tenant's rules to `new` and queues it.
pub async fn create_interaction(
    store: &RoutingStore,
    config: &TenantConfig,
    mut new: NewInteraction,
    now: DateTime<Utc>,
) -> Result<Created, RouterError> {
    if new.urgent {
        new.priority = Priority::Urgent;
        if let Some(queue) = &config.routing.urgent_queue {
            new.queue = queue.clone();
        }
    }
    let hours = config.hours();
    if !hours.is_open(now) {
        if new.channel == Channel::Voice {
            return Err(RouterError::OutsideHours(Box::new(OutsideHours {
                hours: hours.describe(),
                message: config.after_hours_message(new.language).to_string(),
                contact_email: config.contact_email.clone(),
                portal_url: config.portal_url.clone(),
                language: new.language.as_str().to_string(),
            })));
        }
        new.after_hours = true;
    }
    Ok(store.create_interaction(&config.id, &new).await?)
}
