//! `polydense data`.

/// Subcommands of `polydense data`.
#[derive(clap::Subcommand)]
pub enum DataCommand {}

/// Runs `polydense data`.
pub fn run(_c: DataCommand) -> anyhow::Result<()> {
    anyhow::bail!("polydense data is not built yet")
}
