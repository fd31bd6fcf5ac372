//! `polydense train`.

/// Flags of `polydense train`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `polydense train`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("polydense train is not built yet")
}
