//! One file per subcommand: each parses its own flags and calls library functions.

pub mod data;
pub mod eval;
