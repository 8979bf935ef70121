//! `careline key`: make a strong API or agent key and the SHA-256 the tenant
//! file stores (the key itself is never stored), or hash a key of your own
//! after checking it is strong enough.

use std::io::Read as _;

use anyhow::Context as _;
use careline_domain::secret::check_key_strength;
use careline_kit::auth::api_key_sha256_hex;
use clap::Subcommand;
use rand::Rng as _;
use rand::distr::Alphanumeric;

/// Characters of a key `careline key new` makes (about 238 bits).
const NEW_KEY_LEN: usize = 40;

/// `careline key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new random key; prints it once, then the line for the tenant file.
    New,
    /// Read a key from standard input (not the command line, which shell
    /// history keeps), refuse it if weak, and print its SHA-256.
    Hash,
}

pub fn run(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::New => {
            let key: String = rand::rng()
                .sample_iter(Alphanumeric)
                .take(NEW_KEY_LEN)
                .map(char::from)
                .collect();
            println!("key:    {key}");
            println!("sha256: {}", api_key_sha256_hex(&key));
            eprintln!(
                "Give the key to its integration (or agent) once; put the sha256 in the tenant file \
                 (api_keys[].sha256 or agents[].key_sha256)."
            );
        }
        KeyCommand::Hash => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("reading the key from standard input")?;
            let key = input.trim_end_matches(['\r', '\n']);
            check_key_strength(key).map_err(|problem| anyhow::anyhow!("weak key: {problem}"))?;
            println!("{}", api_key_sha256_hex(key));
        }
    }
    Ok(())
}
