//! [`RouterKeys`]: the router API key a service (email-intake, chat-gateway,
//! campaigns) presents for each tenant when it calls the router, and
//! [`RouterLink`]: the channel and keys those calls go through.

use std::collections::BTreeMap;

/// Router API keys by tenant id, parsed from `tenant=key,tenant=key`. Never
/// printed (`Debug` shows the tenants only).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RouterKeys(pub BTreeMap<String, String>);

impl std::fmt::Debug for RouterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl std::str::FromStr for RouterKeys {
    type Err = String;

    fn from_str(text: &str) -> Result<RouterKeys, String> {
        let mut keys = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tenant, key) = pair
                .split_once('=')
                .filter(|(t, k)| !t.trim().is_empty() && !k.trim().is_empty())
                .ok_or_else(|| {
                    "expected tenant=key pairs separated by commas, e.g. demo-health=KEY".to_owned()
                })?;
            keys.insert(tenant.trim().to_owned(), key.trim().to_owned());
        }
        Ok(RouterKeys(keys))
    }
}

impl RouterKeys {
    /// The key for `tenant`, if one is configured.
    pub fn get(&self, tenant: &str) -> Option<&str> {
        self.0.get(tenant).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_keys_parse_pairs_and_refuse_halves() {
        let keys: RouterKeys = " demo-health=abc , other=def".parse().unwrap();
        assert_eq!(keys.get("demo-health"), Some("abc"));
        assert_eq!(keys.get("other"), Some("def"));
        assert!("".parse::<RouterKeys>().unwrap().0.is_empty());
        for bad in ["demo-health", "=abc", "demo-health="] {
            assert!(bad.parse::<RouterKeys>().is_err(), "{bad}");
        }
    }

    #[test]
    fn router_keys_debug_hides_the_keys() {
        let keys: RouterKeys = "demo-health=secret".parse().unwrap();
        assert!(!format!("{keys:?}").contains("secret"));
    }
}

/// The router as a service reaches it on behalf of tenants: one lazily
/// connected channel (reconnecting as needed) and each tenant's router key.
#[derive(Debug, Clone)]
pub struct RouterLink {
    channel: tonic::transport::Channel,
    keys: RouterKeys,
}

impl RouterLink {
    /// A link to the router at `url` (`https://` uses `tls`'s CA file and
    /// client certificate), each call given `timeout`; the error names the
    /// `--router-url` setting.
    pub fn new(
        url: &str,
        keys: RouterKeys,
        tls: &crate::Tls,
        timeout: std::time::Duration,
    ) -> Result<RouterLink, String> {
        let channel = tls
            .grpc_endpoint(url)
            .map_err(|e| format!("--router-url {url:?}: {e}"))?
            .timeout(timeout)
            .connect_lazy();
        Ok(RouterLink { channel, keys })
    }

    /// Whether a router key is configured for `tenant`.
    pub fn has_key(&self, tenant: &str) -> bool {
        self.keys.get(tenant).is_some()
    }

    /// `message` as a call of `tenant`: its router key as the bearer and the
    /// current trace; `None` without a usable key for the tenant.
    pub fn request<T>(&self, tenant: &str, message: T) -> Option<tonic::Request<T>> {
        let value = format!("Bearer {}", self.keys.get(tenant)?).parse().ok()?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", value);
        crate::grpc::inject_trace_context(request.metadata_mut());
        Some(request)
    }

    /// A router client on the shared channel.
    pub fn client(
        &self,
    ) -> careline_proto::v1::router_client::RouterClient<tonic::transport::Channel> {
        careline_proto::v1::router_client::RouterClient::new(self.channel.clone())
    }
}
