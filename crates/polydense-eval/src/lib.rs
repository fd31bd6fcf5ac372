//! polydense-eval.
