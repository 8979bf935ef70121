//! careline-testkit (being built).
