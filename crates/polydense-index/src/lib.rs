//! polydense-index.
