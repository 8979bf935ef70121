//! A scripted Kubernetes API server: kube's client talks to a `tower_test` mock, and the
//! test answers each request it expects, in order, failing on any other.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::Value;

/// How long a test waits for the reconciler's next request.
const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The test's side of the mocked API server.
pub struct ApiServer(Handle);

/// A client and the server it talks to.
pub fn pair() -> (kube::Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "careline"), ApiServer(handle))
}

/// One request the reconciler made, not yet answered.
pub struct Pending {
    /// `path?query`.
    pub uri: String,
    /// The request body as JSON (`Null` when empty).
    pub body: Value,
    respond: tower_test::mock::SendResponse<Response<Body>>,
}

impl Pending {
    /// Answers 200 with `body`.
    pub fn ok(self, body: &impl serde::Serialize) {
        self.reply(StatusCode::OK, serde_json::to_vec(body).unwrap());
    }

    /// Answers 404 as the API server does for a missing object.
    pub fn not_found(self) {
        self.status(StatusCode::NOT_FOUND, "NotFound");
    }

    /// Answers with an API server error `code` (`reason` as in a `Status`, e.g. `Conflict`).
    pub fn status(self, code: StatusCode, reason: &str) {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": reason, "code": code.as_u16(),
            "message": reason,
        });
        self.reply(code, serde_json::to_vec(&status).unwrap());
    }

    fn reply(self, status: StatusCode, body: Vec<u8>) {
        self.respond.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(body))
                .unwrap(),
        );
    }
}

impl ApiServer {
    /// The next request, which must be `method` on `path` (the query is not compared).
    pub async fn expect(&mut self, method: Method, path: &str) -> Pending {
        let (request, respond) = tokio::time::timeout(REQUEST_DEADLINE, self.0.next_request())
            .await
            .unwrap_or_else(|_| {
                panic!("no request within {REQUEST_DEADLINE:?}; expected {method} {path}")
            })
            .unwrap_or_else(|| panic!("client dropped; expected {method} {path}"));
        let uri = request.uri().to_string();
        assert_eq!(
            (request.method(), request.uri().path()),
            (&method, path),
            "unexpected request {uri}"
        );
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Pending { uri, body, respond }
    }

    /// Fails if a request is waiting; call once the reconcile has returned, so every
    /// request it made is already queued.
    pub fn assert_idle(mut self) {
        use futures::FutureExt as _;
        if let Some(Some((request, _))) = self.0.next_request().now_or_never() {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}
