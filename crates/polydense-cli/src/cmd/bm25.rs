//! `polydense bm25`.

/// Subcommands of `polydense bm25`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `polydense bm25`.
pub fn run(_c: Command) -> anyhow::Result<()> {
    anyhow::bail!("polydense bm25 is not built yet")
}
