//! `polydense retrieve`.

/// Flags of `polydense retrieve`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `polydense retrieve`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("polydense retrieve is not built yet")
}
