//! `polydense report RUN_DIR`: the run directory's report.html.

use std::path::PathBuf;

/// Flags of `polydense report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run directory of `polydense train` or `polydense demo`.
    pub run_dir: PathBuf,
}

/// Writes RUN_DIR/report.html and RUN_DIR/plots/*.png, and prints the report's path.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = crate::report::write_report(&args.run_dir)?;
    println!("{}", path.display());
    Ok(())
}
