//! `careline config`: validate tenant files and write them to the config
//! bucket that every service watches (changes apply live).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use careline_bus::tenants::TenantStore;
use careline_bus::{MAX_REPLICAS, config_applied};
use careline_domain::{ConfigError, TenantConfig};
use careline_kit::TlsConfig;
use careline_kit::config::{
    DEFAULT_NATS_URL, DEFAULT_REDIS_URL, ENV_NATS_CREDS, ENV_NATS_REPLICAS, ENV_NATS_URL,
    ENV_REDIS_URL,
};
use careline_routing::RoutingStore;
use clap::builder::RangedU64ValueParser;
use clap::{Args, Subcommand};
use futures::StreamExt as _;

/// How long to wait for NATS to accept the connection before saying how to start it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `delete` lets calls in flight for the deleted tenant finish before it removes
/// their state a second time.
const DELETE_SETTLE: Duration = Duration::from_secs(2);
/// How long `apply` waits by default for a running service to confirm the new revision (a
/// routing worker applies a change within milliseconds; a busy one within a few seconds).
const DEFAULT_APPLY_WAIT_SECS: u64 = 15;

/// Where the NATS server is, and how many servers keep the tenant bucket.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL, or a comma-separated list of a cluster's servers.
    #[arg(
        long,
        env = ENV_NATS_URL,
        default_value = DEFAULT_NATS_URL
    )]
    pub nats_url: String,
    /// NATS servers that keep a copy of the tenant bucket (1 to 5); unset, an existing bucket
    /// keeps its count and a new one gets 1. Give it the value the services have.
    #[arg(
        long,
        env = ENV_NATS_REPLICAS,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_REPLICAS as u64)
    )]
    pub nats_replicas: Option<usize>,
    #[command(flatten)]
    pub access: NatsAccessArgs,
}

/// How the CLI gets into a secured NATS: the CA file (and a client certificate when NATS
/// verifies clients) for tls:// servers, and a credentials file; a user and password go in
/// the URL. The same env vars as the services'; the TLS files serve `rediss://` too.
#[derive(Debug, Clone, Default, Args)]
pub struct NatsAccessArgs {
    /// NATS credentials file (JWT and nkey seed, as `nsc` writes it).
    #[arg(long, env = ENV_NATS_CREDS)]
    pub nats_creds: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsConfig,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a tenant file and write it to the config bucket, then wait until the running
    /// services have it in their routing state. Nothing is written if it is invalid.
    Apply {
        /// The tenant YAML file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Seconds to wait for a running service to confirm the new revision; 0 returns
        /// once the file is written.
        #[arg(long, default_value_t = DEFAULT_APPLY_WAIT_SECS)]
        wait_secs: u64,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Validate a tenant file without writing it; every problem in it is reported at once.
    Check {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Remove a tenant: its configuration (its API keys and agent logins stop working at
    /// once) and its state in Redis. Refused while it has open contacts, unless --force.
    Delete {
        tenant: String,
        /// Delete even though contacts are still open (they are lost with the tenant).
        #[arg(long)]
        force: bool,
        /// Redis the services use.
        #[arg(long, env = ENV_REDIS_URL, default_value = DEFAULT_REDIS_URL)]
        redis_url: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Print a tenant's stored configuration as YAML.
    Get {
        tenant: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

pub async fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { file } => {
            let config = load(&file)?;
            println!("{}: tenant {} is valid", file.display(), config.id);
        }
        ConfigCommand::Apply {
            file,
            wait_secs,
            nats,
        } => {
            let config = load(&file)?;
            let client = connect(&nats.nats_url, &nats.access).await?;
            // Subscribed before writing, so the confirmation cannot pass unseen.
            let mut confirmations = client
                .subscribe(config_applied::subject(&config.id)?.to_string())
                .await?;
            let revision = store(&client, &nats).await?.put(&config).await?;
            println!(
                "applied tenant {} (revision {revision}) from {}",
                config.id,
                file.display()
            );
            if wait_secs == 0 {
                return Ok(());
            }
            let confirmed = tokio::time::timeout(Duration::from_secs(wait_secs), async {
                while let Some(message) = confirmations.next().await {
                    let applied = config_applied::revision_in(&message.payload);
                    if applied.is_some_and(|applied| applied >= revision) {
                        return true;
                    }
                }
                false
            })
            .await;
            if confirmed == Ok(true) {
                println!("the running services route with revision {revision}");
            } else {
                println!(
                    "no running service confirmed revision {revision} within {} s: it applies \
                     when the router or presence starts (or reaches Redis); until then creates \
                     and logins for a new tenant answer UNAVAILABLE, safe to retry",
                    wait_secs
                );
            }
        }
        ConfigCommand::Delete {
            tenant,
            force,
            redis_url,
            nats,
        } => delete(&tenant, force, &redis_url, &nats).await?,
        ConfigCommand::Get { tenant, nats } => {
            let store = open(&nats).await?;
            let config = store.get(&tenant).await?.with_context(|| {
                format!(
                    "tenant {tenant} is not configured: add it with `careline config apply -f FILE`"
                )
            })?;
            print!("{}", serde_yaml_ng::to_string(&config)?);
        }
    }
    Ok(())
}

/// `config delete`: see [`ConfigCommand::Delete`].
async fn delete(tenant: &str, force: bool, redis_url: &str, nats: &NatsArgs) -> anyhow::Result<()> {
    let store = open(nats).await?;
    if store.get(tenant).await?.is_none() {
        anyhow::bail!(
            "tenant {tenant} is not configured: `careline config get` lists nothing to delete"
        );
    }
    let tls = nats.access.tls.load()?;
    let routing = RoutingStore::connect_with_tls(redis_url, &tls)
        .await
        .with_context(|| {
            format!("cannot reach Redis at {redis_url}: pass --redis-url or set {ENV_REDIS_URL}")
        })?;
    let open_contacts = routing.open_interactions(tenant).await?;
    if open_contacts > 0 && !force {
        anyhow::bail!(
            "tenant {tenant} has {open_contacts} open contacts: resolve them first, or pass --force \
             to delete them with the tenant"
        );
    }
    store.delete(tenant).await?;
    let mut keys = routing.purge_tenant(tenant).await?;
    // A call in flight when the configuration went may still write; the services
    // drop the tenant within milliseconds, so a second pass after a pause gets it.
    tokio::time::sleep(DELETE_SETTLE).await;
    keys += routing.purge_tenant(tenant).await?;
    println!(
        "deleted tenant {tenant}: its configuration (its API keys and agent logins no longer \
         work), {open_contacts} open contacts and {keys} Redis keys; its events stay in the event \
         stream until they age out"
    );
    Ok(())
}

/// Reads and validates a tenant file; errors name the field and line.
pub fn load(file: &std::path::Path) -> anyhow::Result<TenantConfig> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    TenantConfig::from_yaml(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is invalid:\n{}",
            file.display(),
            describe_problems(&e, &text)
        )
    })
}

/// One problem per line, each followed by the source line it points at: a YAML
/// syntax error names no field, so the quoted line is what shows the reader where to look.
fn describe_problems(error: &ConfigError, text: &str) -> String {
    let mut out = String::new();
    for problem in &error.problems {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&problem.to_string());
        let source = problem
            .line
            .and_then(|line| text.lines().nth(line.checked_sub(1)?));
        if let (Some(line), Some(source)) = (problem.line, source) {
            out.push_str(&format!("\n  {line:>4} | {source}"));
        }
    }
    out
}

/// Writes a validated tenant to the bucket; returns the KV revision.
pub async fn apply(nats: &NatsArgs, config: &TenantConfig) -> anyhow::Result<u64> {
    Ok(open(nats).await?.put(config).await?)
}

async fn open(nats: &NatsArgs) -> anyhow::Result<TenantStore> {
    store(&connect(&nats.nats_url, &nats.access).await?, nats).await
}

async fn store(client: &async_nats::Client, nats: &NatsArgs) -> anyhow::Result<TenantStore> {
    let js = async_nats::jetstream::new(client.clone());
    Ok(TenantStore::open(&js, nats.nats_replicas).await?)
}

/// A NATS client, or an error saying how to start NATS.
pub async fn connect(
    nats_url: &str,
    access: &NatsAccessArgs,
) -> anyhow::Result<async_nats::Client> {
    careline_kit::nats_client::options_from(nats_url, &access.tls, access.nats_creds.as_deref())
        .await?
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(careline_bus::server_list(nats_url))
        .await
        .with_context(|| {
            format!(
                "cannot reach NATS at {nats_url}: start Careline with `careline up` \
                 (or scripts/up.sh), or point --nats-url / CARELINE_NATS_URL at your NATS server"
            )
        })
}
