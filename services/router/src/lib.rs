//! careline-router (being built).
