//! JSON Schema details serde's derive cannot express (feature `schema`, used for the
//! operator's CRDs): the weekday names a tenant file may use.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A weekday as tenant files write it: `mon`..`sun` (chrono also reads `Mon`..`Sun`).
/// schemars' own schema for `chrono::Weekday` allows only `Mon`..`Sun`, which would make
/// the Kubernetes API server reject the lowercase form every example uses.
pub(crate) struct Weekday;

impl JsonSchema for Weekday {
    fn schema_name() -> Cow<'static, str> {
        "Weekday".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": [
                "mon", "tue", "wed", "thu", "fri", "sat", "sun",
                "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
            ]
        })
    }
}
