//! The NATS servers a client connects to. `--nats-url` may name several
//! servers of a cluster, comma-separated; async-nats parses one URL per
//! entry, so the list is split here and every client gets all of them: the
//! first connection can go to any live server, and a reconnect after a server
//! dies tries the others (besides those the cluster itself advertises).

/// The entries of a comma-separated server list, trimmed; empty entries are dropped.
pub fn server_list(nats_url: &str) -> Vec<String> {
    nats_url
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_list_becomes_one_entry_per_server() {
        assert_eq!(
            server_list("nats://a:4222, nats://b:4222,,tls://c:4222 "),
            ["nats://a:4222", "nats://b:4222", "tls://c:4222"]
        );
        assert_eq!(server_list("nats://a:4222"), ["nats://a:4222"]);
    }
}
