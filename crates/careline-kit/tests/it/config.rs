//! Configuration parsing from explicit args and env, and errors naming the field.

use std::collections::HashMap;

use careline_kit::config::parse_from;
use careline_kit::{CommonConfig, KitError, MetricsAddr};

#[derive(Debug, clap::Parser)]
struct RouterLikeConfig {
    #[command(flatten)]
    common: CommonConfig,
}

#[test]
fn validation_error_names_env_var_and_flag() {
    let env = HashMap::from([("CARELINE_REDIS_URL".to_owned(), "foo".to_owned())]);
    let cfg: RouterLikeConfig = parse_from(["router"], &env).expect("parses");
    let err = cfg.common.validate().expect_err("foo is not a redis URL");
    assert!(
        matches!(err, KitError::Config { ref field, .. } if field == "CARELINE_REDIS_URL (--redis-url)")
    );
    assert_eq!(
        err.to_string(),
        r#"invalid config CARELINE_REDIS_URL (--redis-url): "foo" is not a redis:// or rediss:// URL; use one URL for a single server, a comma-separated list of node URLs or redis+cluster://host:port,host:port for a Redis Cluster"#
    );
}

#[test]
fn metrics_can_be_turned_off_by_flag() {
    let cfg: RouterLikeConfig =
        parse_from(["router", "--metrics-addr", "off"], &HashMap::new()).expect("parses");
    assert_eq!(cfg.common.metrics_addr, MetricsAddr::Off);
    assert_eq!(cfg.common.metrics_addr.socket_addr(), None);
    cfg.common.validate().expect("valid");
}
