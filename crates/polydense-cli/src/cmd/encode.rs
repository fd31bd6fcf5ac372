//! `polydense encode`.

/// Flags of `polydense encode`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `polydense encode`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("polydense encode is not built yet")
}
