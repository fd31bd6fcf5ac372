//! polydense-model: differentiable encoders on candle and the model files they load and save.

pub mod io;
