//! polydense-mine.
