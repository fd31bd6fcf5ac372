//! `polydense demo`: the whole pipeline on the built-in default, XQuAD-R and e5-small.

use std::path::PathBuf;

use crate::demo::{self, Settings};

/// Flags of `polydense demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the demo's stages write; a rerun reuses every stage whose inputs are unchanged.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// A run of under 3 minutes on 2 cores: three languages and a few training steps.
    #[arg(long)]
    pub tiny: bool,
    /// The starting model: an installed name or an HF directory.
    #[arg(long, default_value = "e5-small")]
    pub model: String,
}

/// Runs every stage whose inputs changed, then prints the results table and the report path.
pub fn run(args: Args) -> anyhow::Result<()> {
    demo::run(
        &args.out,
        &Settings {
            tiny: args.tiny,
            model: args.model,
        },
    )
}
