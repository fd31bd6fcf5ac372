//! The answer cache: an append-only JSON-lines file keyed by a content hash of the backend,
//! the model, the conversation, the schema and the decoding settings, so that a rerun (or
//! another run asking the same) costs nothing.
//!
//! Each answer is appended as one line with one `write` as soon as it arrives, on a file
//! opened in append mode (concurrent processes do not overwrite each other's lines). A crash
//! can only tear the last line; opening the cache drops such a torn tail and truncates the
//! file to the last complete line, so nothing after it is glued to garbage.

use crate::error::{LlmError, Result};
use crate::request::{ChatRequest, Completion};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A cache key: SHA-256 of the backend id and the canonical JSON of the request.
pub type Key = [u8; 32];

/// One line of the file.
#[derive(Serialize, Deserialize)]
struct Line {
    /// Hex of the key.
    k: String,
    /// The answer.
    c: Completion,
}

/// The cache of one file, shared by the threads of a run.
pub struct Cache {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    answers: HashMap<Key, Completion>,
    file: File,
}

/// The key of `request` sent to `backend_id`.
pub fn key(backend_id: &str, request: &ChatRequest) -> Key {
    let mut h = Sha256::new();
    h.update(backend_id.as_bytes());
    h.update([0u8]);
    h.update(serde_json::to_vec(request).expect("a request serialises"));
    h.finalize().into()
}

fn hex(k: &Key) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Key> {
    if s.len() != 64 {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(k)
}

impl Cache {
    /// Opens (or creates, with its directory) the cache at `path` and loads its answers.
    /// A torn last line is dropped; any other bad line is an error naming it.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| LlmError::io(dir, e))?;
        }
        let mut bytes = Vec::new();
        if path.exists() {
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| LlmError::io(path, e))?;
        }
        // Everything after the last newline is a line whose write did not finish.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            tracing::warn!(
                "{}: dropping a torn last line ({} bytes) left by an interrupted run",
                path.display(),
                bytes.len() - complete
            );
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(complete as u64))
                .map_err(|e| LlmError::io(path, e))?;
        }
        let mut answers = HashMap::new();
        for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let bad = |message: String| LlmError::Cache {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            };
            let l: Line = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
            let k = unhex(&l.k)
                .ok_or_else(|| bad(format!("`k` is not a 64-digit hex key: {}", l.k)))?;
            answers.insert(k, l.c);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| LlmError::io(path, e))?;
        Ok(Cache {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { answers, file }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers held.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock").answers.len()
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored answer for `key`.
    pub fn get(&self, key: &Key) -> Option<Completion> {
        self.inner
            .lock()
            .expect("cache lock")
            .answers
            .get(key)
            .cloned()
    }

    /// Stores an answer: in memory, and as one appended line.
    pub fn put(&self, key: Key, answer: &Completion) -> Result<()> {
        let mut line = serde_json::to_vec(&Line {
            k: hex(&key),
            c: answer.clone(),
        })
        .expect("a cache line serialises");
        line.push(b'\n');
        let mut inner = self.inner.lock().expect("cache lock");
        inner
            .file
            .write_all(&line)
            .map_err(|e| LlmError::io(&self.path, e))?;
        inner.answers.insert(key, answer.clone());
        Ok(())
    }

    /// Forces the appended lines to disk, for checkpoints (a killed process loses nothing
    /// without it; a power cut would).
    pub fn sync(&self) -> Result<()> {
        let inner = self.inner.lock().expect("cache lock");
        inner
            .file
            .sync_data()
            .map_err(|e| LlmError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Message, Sampling};

    fn req(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user(text)],
            sampling: Sampling::default(),
            schema: None,
        }
    }

    fn answer(text: &str) -> Completion {
        Completion {
            text: text.into(),
            completion_tokens: 3,
            ..Completion::default()
        }
    }

    #[test]
    fn keys_change_with_backend_prompt_and_settings() {
        let a = key("ollama:m", &req("hi"));
        assert_eq!(a, key("ollama:m", &req("hi")));
        assert_ne!(a, key("ollama:n", &req("hi")));
        assert_ne!(a, key("ollama:m", &req("ho")));
        let mut hot = req("hi");
        hot.sampling.temperature = 0.7;
        assert_ne!(a, key("ollama:m", &hot));
        assert_eq!(unhex(&hex(&a)), Some(a));
    }

    #[test]
    fn answers_survive_reopening_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.jsonl");
        let (k1, k2) = (key("b", &req("one")), key("b", &req("two")));
        {
            let c = Cache::open(&path).unwrap();
            c.put(k1, &answer("first")).unwrap();
            c.put(k2, &answer("second")).unwrap();
        }
        // A crash in the middle of a third write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"k":"abcd","c":{"te"#).unwrap();
        drop(f);
        let c = Cache::open(&path).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&k2).unwrap().text, "second");
        // The torn bytes are gone, so the next line starts clean.
        let k3 = key("b", &req("three"));
        c.put(k3, &answer("third")).unwrap();
        drop(c);
        let c = Cache::open(&path).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&k3).unwrap().text, "third");
    }

    #[test]
    fn a_bad_line_in_the_middle_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.jsonl");
        std::fs::write(&path, "{\"k\":\"zz\",\"c\":{\"text\":\"x\"}}\nnot json\n").unwrap();
        let err = Cache::open(&path).err().unwrap().to_string();
        assert!(err.contains("cache.jsonl:1"), "{err}");
    }
}
