//! polydense-index: where embeddings live after encoding, and how they are searched.
//!
//! [`store`] keeps a matrix of embeddings as memory-mapped safetensors beside an id sidecar,
//! written in streamed chunks so a corpus of any size encodes in bounded memory. [`exact`]
//! finds the k rows with the largest inner product for each query, chunk by chunk, with
//! deterministic tie-breaking (score descending, then doc id ascending). [`kmeans`] clusters
//! embeddings for the clustered batch samplers (ICT), on the CPU or a candle device, and
//! [`pca`] projects them onto a plane for plots or onto every principal axis (the PCA
//! compression baseline). [`quantized`] compresses a matrix to f16 or int8 and searches it
//! exactly; [`quantized_store`] keeps such a matrix on disk, and [`dense_index`] opens
//! either kind of store behind one search.
//!
//! ```
//! use polydense_index::{EmbeddingStore, ExactSearch, RowId, StoreWriter};
//!
//! let dir = tempfile::tempdir()?;
//! let mut writer = StoreWriter::create(dir.path(), 2, Default::default())?;
//! writer.append(&[RowId::new("d1"), RowId::new("d2")], &[1.0, 0.0, 0.6, 0.8])?;
//! writer.finish()?;
//!
//! let store = EmbeddingStore::open(dir.path())?;
//! let hits = ExactSearch::new(1).search_store(&[0.0, 1.0], &store)?;
//! assert_eq!(store.ids()[hits[0][0].row].id, "d2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dense_index;
pub mod error;
pub mod exact;
pub mod kmeans;
pub mod lang_filter;
pub mod pca;
pub mod quantized;
pub mod quantized_store;
pub mod store;

pub use dense_index::DenseIndex;
pub use error::{IndexError, Result};
pub use exact::{ExactSearch, Hit};
pub use kmeans::{kmeans, kmeans_on, KMeans, KMeansConfig};
pub use lang_filter::search_within_lang;
pub use pca::{pca_2d, Pca, Pca2d};
pub use quantized::{QuantizedMatrix, VectorDtype};
pub use quantized_store::QuantizedStore;
pub use store::{write_store, EmbeddingStore, RowId, StoreMetadata, StoreWriter};
