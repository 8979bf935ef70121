//! `careline`: run the whole platform locally (`careline up`), manage
//! tenant configuration (`careline config apply -f FILE`), make API and agent
//! keys (`careline key new`) and request an email (`careline notify`).

mod config_cmd;
mod key_cmd;
mod notify_cmd;
mod up;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "careline",
    version,
    about = "Careline: omnichannel contact-center routing for health plans"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start redis-server, nats-server and every Careline service in this process, with the demo tenant.
    Up(Box<up::UpArgs>),
    /// Tenant configuration in the NATS KV bucket.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Make a strong API or agent key, or hash one (the tenant file stores the SHA-256).
    #[command(subcommand)]
    Key(key_cmd::KeyCommand),
    /// Ask the notifications service to send one email (publishes a NotificationRequested).
    Notify(notify_cmd::NotifyArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(*args).await,
        Command::Config(command) => config_cmd::run(command).await,
        Command::Key(command) => key_cmd::run(command),
        Command::Notify(args) => notify_cmd::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
