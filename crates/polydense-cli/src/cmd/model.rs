//! `polydense model`.

/// Subcommands of `polydense model`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `polydense model`.
pub fn run(_c: Command) -> anyhow::Result<()> {
    anyhow::bail!("polydense model is not built yet")
}
