//! polydense-model.
