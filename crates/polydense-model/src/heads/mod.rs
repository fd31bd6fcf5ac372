//! Heads on the pooled vector and on the layers: the MoE feed-forward (experts replacing a
//! layer's FFN through [`crate::ffn::FeedForward`]), the Matryoshka/SMRL dimension stages and
//! the ADS dimension selector (SMEC, EMNLP 2025). Each will live in its own file here; the
//! dense encoder needs none of them, so the module is empty until they are built.
