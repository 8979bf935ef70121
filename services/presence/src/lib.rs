//! careline-presence (being built).
