//! The seed of a randomised run: from `CARELINE_CHAOS_SEED` to replay a
//! failure, or a fresh one; printed at start and in every failure message.

/// The variable that replays a run.
pub const SEED_ENV: &str = "CARELINE_CHAOS_SEED";

/// A randomised run's seed and how to replay it.
#[derive(Debug, Clone)]
pub struct RunSeed {
    pub seed: u64,
    /// ` (seed N; replay with CARELINE_CHAOS_SEED=N cargo nextest run ... TEST)`,
    /// appended to every failure message.
    pub context: String,
}

impl RunSeed {
    /// The seed from [`SEED_ENV`], or a random one; prints it and how to
    /// replay `test` (a filter for `cargo nextest run -p careline-e2e`).
    pub fn for_test(test: &str) -> RunSeed {
        let seed = match std::env::var(SEED_ENV) {
            Ok(value) => value.trim().parse().unwrap_or_else(|_| {
                panic!("{SEED_ENV}={value:?} is not a number: unset it or give a u64")
            }),
            Err(_) => rand::random(),
        };
        let replay =
            format!("{SEED_ENV}={seed} cargo nextest run -p careline-e2e --no-capture {test}");
        println!("seed {seed}; replay with: {replay}");
        RunSeed {
            seed,
            context: format!("\n(seed {seed}; replay with: {replay})"),
        }
    }
}
