//! Heads on the pooled vector. Each lives in its own file; a model saves its head as a
//! sentence-transformers module, so the directory stays loadable by sentence-transformers.
//!
//! - [`projection`]: a dense layer (sentence-transformers' `Dense`), the form compression
//!   heads (MRL adaptors, SMEC) take at inference.

pub mod projection;

pub use projection::{Projection, ProjectionActivation, ProjectionConfig};
