//! email-intake end to end: SMTP (lettre and a raw client) and gRPC in, a
//! real router in-process, real Redis and NATS.

mod durability;
mod harness;
mod hostile;
mod retention;
mod smtp;
mod threading;
