//! One file per subcommand: each parses its own flags and calls library functions.

pub mod bm25;
pub mod compress;
pub mod data;
pub mod demo;
pub mod encode;
pub mod eval;
pub mod first_hit;
pub mod llm;
pub mod mine;
pub mod model;
pub mod report;
pub mod retrieve;
pub mod search;
pub mod train;
