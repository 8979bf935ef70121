//! `careline config`: validate tenant files and write them to the config
//! bucket that every service watches (changes apply live).

use std::path::PathBuf;

use anyhow::Context;
use careline_bus::tenants::TenantStore;
use careline_domain::TenantConfig;
use clap::{Args, Subcommand};

/// Where the NATS server is.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL.
    #[arg(
        long,
        env = "CARELINE_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a tenant file and write it to the config bucket. Nothing is written if it is invalid.
    Apply {
        /// The tenant YAML file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Validate a tenant file without writing it.
    Check {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
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
        ConfigCommand::Apply { file, nats } => {
            let config = load(&file)?;
            let revision = apply(&nats.nats_url, &config).await?;
            println!(
                "applied tenant {} (revision {revision}) from {}",
                config.id,
                file.display()
            );
        }
        ConfigCommand::Get { tenant, nats } => {
            let store = open(&nats.nats_url).await?;
            let config = store
                .get(&tenant)
                .await?
                .with_context(|| format!("tenant {tenant} is not configured"))?;
            print!("{}", serde_yaml_ng::to_string(&config)?);
        }
    }
    Ok(())
}

/// Reads and validates a tenant file; errors name the field and line.
pub fn load(file: &std::path::Path) -> anyhow::Result<TenantConfig> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    TenantConfig::from_yaml(&text)
        .map_err(|e| anyhow::anyhow!("{} is invalid:\n{e}", file.display()))
}

/// Writes a validated tenant to the bucket; returns the KV revision.
pub async fn apply(nats_url: &str, config: &TenantConfig) -> anyhow::Result<u64> {
    Ok(open(nats_url).await?.put(config).await?)
}

async fn open(nats_url: &str) -> anyhow::Result<TenantStore> {
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url} (is `careline up` running?)"))?;
    Ok(TenantStore::open(&async_nats::jetstream::new(client)).await?)
}
