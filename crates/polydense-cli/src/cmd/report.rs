//! `polydense report RUN_DIR`: the run directory's report.html.

use std::path::PathBuf;

/// Flags of `polydense report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run directory of `polydense train` or `polydense demo`.
    pub run_dir: PathBuf,
}

/// Writes RUN_DIR/report.html.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("report for {} is not available in this build", args.run_dir.display())
}
