//! Bad frames and hostile clients.
