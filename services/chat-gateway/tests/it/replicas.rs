//! Two replicas, resume after a drop, a replica killed mid-chat.
