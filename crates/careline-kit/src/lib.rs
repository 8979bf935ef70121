//! careline-kit (being built).
