//! The resources and servers the reconcile tests use: the demo tenant as Kubernetes
//! resources (`services/operator/examples/demo-health.yaml`), a real nats-server with the
//! configuration bucket, and an operator context whose client talks to the mocked API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use careline_bus::TenantStore;
use careline_operator::Context;
use careline_operator::controller::FINALIZER;
use careline_operator::crd::{ContactQueue, Tenant};
use careline_testkit::NatsServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize as _;

use crate::api_server::{self, ApiServer};

/// The example file, as shipped.
pub const EXAMPLE: &str = include_str!("../../examples/demo-health.yaml");
/// The namespace the operator reads Secrets from in these tests.
pub const SECRET_NAMESPACE: &str = "careline";

/// The example's resources.
pub struct Resources {
    /// The Secret holding the API key.
    pub secret: Secret,
    /// The Tenant, with the finalizer and generation 3.
    pub tenant: Tenant,
    /// Its ContactQueues (general, billing, clinical), generation 1.
    pub queues: Vec<ContactQueue>,
}

/// The example's resources as the API server returns them: the Tenant carries the
/// finalizer and a generation, the Secret its data (the API server turns `stringData`
/// into `data`).
pub fn example() -> Resources {
    let mut secret = None;
    let mut tenant = None;
    let mut queues = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(EXAMPLE) {
        let value = serde_json::Value::deserialize(document).unwrap();
        match value["kind"].as_str().unwrap() {
            "Secret" => secret = Some(serde_json::from_value::<Secret>(value).unwrap()),
            "Tenant" => tenant = Some(serde_json::from_value::<Tenant>(value).unwrap()),
            "ContactQueue" => queues.push(serde_json::from_value::<ContactQueue>(value).unwrap()),
            other => panic!("unexpected kind {other} in the example"),
        }
    }
    let mut secret = secret.expect("a Secret in the example");
    let data: BTreeMap<String, ByteString> = secret
        .string_data
        .take()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.into_bytes())))
        .collect();
    secret.data = Some(data);
    let mut tenant = tenant.expect("a Tenant in the example");
    tenant.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    tenant.metadata.generation = Some(3);
    for queue in &mut queues {
        queue.metadata.generation = Some(1);
    }
    Resources {
        secret,
        tenant,
        queues,
    }
}

/// A nats-server with the configuration bucket, and an operator context on a mocked API server.
pub struct Harness {
    /// What the reconcilers get.
    pub ctx: Arc<Context>,
    /// The configuration bucket, to check what was written.
    pub store: TenantStore,
    _nats: NatsServer,
}

impl Harness {
    /// Starts NATS and opens the bucket; returns the mocked API server to script.
    pub async fn start() -> (Harness, ApiServer) {
        let nats = NatsServer::start().await.unwrap();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let store = TenantStore::open(&async_nats::jetstream::new(client), None)
            .await
            .unwrap();
        let (client, api) = api_server::pair();
        let ctx = Arc::new(Context {
            client,
            store: store.clone(),
            secret_namespace: SECRET_NAMESPACE.into(),
        });
        let harness = Harness {
            ctx,
            store,
            _nats: nats,
        };
        (harness, api)
    }

    /// The bucket revision of tenant `id`, if stored.
    pub async fn revision(&self, id: &str) -> Option<u64> {
        self.store
            .bucket()
            .entry(id)
            .await
            .unwrap()
            .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
            .map(|e| e.revision)
    }
}

/// `{"items": [...]}` as a list response.
pub fn list<T: serde::Serialize>(kind: &str, items: &[T]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "careline.io/v1alpha1",
        "kind": format!("{kind}List"),
        "metadata": { "resourceVersion": "1" },
        "items": items,
    })
}
