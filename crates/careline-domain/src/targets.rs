//! Routing targets: which (pseudo-)queues an interaction can wait in and which
//! agents may serve each, derived from tenant configuration.
