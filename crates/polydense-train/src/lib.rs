//! polydense-train.
