//! careline-bus (being built).
