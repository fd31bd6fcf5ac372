//! `polydense eval`.

/// Flags of `polydense eval`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `polydense eval`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("polydense eval is not built yet")
}
