//! polydense-lexical.
