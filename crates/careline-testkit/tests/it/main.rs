//! The testkit's own tests: a sandbox gives working clients for both servers.

mod sandbox;
