//! Host buffers that go back to a pool when dropped, for the fused layer's saved activations
//! and temporaries.
//!
//! A training step allocates and frees the same few dozen large buffers in the same order
//! every step. Freed to the allocator, they are returned to the OS (mimalloc purges freed
//! memory after a few milliseconds) and the next allocation of the same size faults in fresh
//! pages that the kernel must zero (`clear_page_erms` was a fifth of the samples of a step).
//! The pool holds at most [`MAX_POOLED`] buffers, so its size is bounded by what one step had
//! live at once.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// The most buffers kept for reuse; enough for every activation of a 24-layer model.
const MAX_POOLED: usize = 256;

/// Free buffers of one element type.
pub(crate) struct Pool<T>(Mutex<Vec<Vec<T>>>);

impl<T: Copy + Default> Pool<T> {
    const fn new() -> Self {
        Pool(Mutex::new(Vec::new()))
    }

    /// `len` initialised elements: the smallest free buffer that fits, else a new one.
    fn take(&self, len: usize) -> Vec<T> {
        let reused = {
            let mut free = self.0.lock().expect("buffer pool lock");
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, v)| v.len() >= len)
                .min_by_key(|(_, v)| v.len())
                .map(|(i, _)| i);
            best.map(|i| free.swap_remove(i))
        };
        match reused {
            Some(mut v) => {
                v.truncate(len);
                v
            }
            None => vec![T::default(); len],
        }
    }

    /// Keeps `v` for reuse (unless the pool is full).
    fn put(&self, mut v: Vec<T>) {
        // The full initialised length, so any later request up to it can reuse the buffer.
        let full = v.capacity();
        if full == 0 {
            return;
        }
        v.resize(full, T::default());
        let mut free = self.0.lock().expect("buffer pool lock");
        if free.len() < MAX_POOLED {
            free.push(v);
        }
    }
}

/// Element types with a pool of their own.
pub(crate) trait Pooled: Copy + Default + Send + 'static {
    fn pool() -> &'static Pool<Self>;
}

impl Pooled for f32 {
    fn pool() -> &'static Pool<Self> {
        static POOL: Pool<f32> = Pool::new();
        &POOL
    }
}

impl Pooled for f64 {
    fn pool() -> &'static Pool<Self> {
        static POOL: Pool<f64> = Pool::new();
        &POOL
    }
}

/// A buffer of initialised but unspecified values, returned to its pool when dropped.
pub(crate) struct Buf<T: Pooled>(Vec<T>);

impl<T: Pooled> Buf<T> {
    /// `len` elements whose values the caller overwrites.
    pub fn uninit(len: usize) -> Self {
        Buf(T::pool().take(len))
    }
}

impl<T: Pooled> Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Pooled> DerefMut for Buf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Pooled> Drop for Buf<T> {
    fn drop(&mut self) {
        T::pool().put(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_by_the_next_request_that_fits() {
        let pool = Pool::<f32>::new();
        let first = pool.take(100);
        let ptr = first.as_ptr();
        pool.put(first);
        let big = pool.take(101);
        assert_ne!(big.as_ptr(), ptr, "too small to reuse");
        let smaller = pool.take(93);
        assert_eq!((smaller.as_ptr(), smaller.len()), (ptr, 93));
        pool.put(smaller);
        let again = pool.take(100);
        assert_eq!(again.as_ptr(), ptr, "put back at full length");
    }
}
