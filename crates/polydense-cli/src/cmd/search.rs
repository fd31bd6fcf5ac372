//! `polydense search`.

/// Flags of `polydense search`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `polydense search`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("polydense search is not built yet")
}
