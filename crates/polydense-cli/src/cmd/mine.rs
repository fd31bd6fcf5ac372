//! `polydense mine`.

/// Subcommands of `polydense mine`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `polydense mine`.
pub fn run(_c: Command) -> anyhow::Result<()> {
    anyhow::bail!("polydense mine is not built yet")
}
