//! careline-routing (being built).
