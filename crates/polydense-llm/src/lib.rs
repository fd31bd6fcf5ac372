//! polydense-llm.
