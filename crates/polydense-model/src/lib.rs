//! polydense-model: differentiable BERT/XLM-R encoders on candle and the model files they
//! load and save.
//!
//! Every op of the [`Encoder`] has a backward pass (candle-nn's fused LayerNorm and softmax
//! have none), so each weight can be trained; fused CPU kernels in [`ops`] make it fast.
//! [`TextEncoder`] is the inference side: texts in, vectors in input order out.
//!
//! ```
//! use candle_core::Device;
//! use polydense_model::{Encoder, EncoderConfig, TokenBatch};
//!
//! let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 7)?;
//! let batch = TokenBatch::from_ids(&[vec![2, 5, 3], vec![2, 3]], 0, &Device::Cpu)?;
//! let vecs = enc.forward(&batch)?; // [2, 16], unit length, differentiable
//! assert_eq!(vecs.dims(), &[2, 16]);
//! # Ok::<(), polydense_model::ModelError>(())
//! ```

pub mod config;
pub mod device;
pub mod encoder;
pub mod error;
pub mod ffn;
pub mod heads;
pub mod io;
pub mod linear;
pub mod model;
pub mod ops;
pub mod pooling;
pub mod text_encoder;
pub mod tokenize;

pub use config::{Activation, EncoderConfig, Family};
pub use device::device;
pub use error::{ModelError, Result};
pub use ffn::{FeedForward, FfnConfig};
pub use io::hf::resolve;
pub use linear::Linear;
pub use model::Encoder;
pub use ops::Kernels;
pub use pooling::{l2_normalize, Pooling, PoolingMode};
pub use text_encoder::{is_two_tower, tower_dir, TextEncoder};
pub use tokenize::{Prompts, TextKind, TextTokenizer, TokenBatch};
