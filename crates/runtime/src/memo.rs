//! Answers of plugin calls that depend on their arguments only (`source-fields`,
//! `select-fields`), kept per loaded plugin so a run does not instantiate a component to ask
//! again. Only successful answers are kept: an error is asked (and reported) again.

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept before the memo starts over (a profile adds one or two).
const CAPACITY: usize = 4096;

/// Answers by their arguments, joined into one key.
#[derive(Debug, Default)]
pub(crate) struct Memo<V>(Mutex<HashMap<String, V>>);

impl<V: Clone> Memo<V> {
    /// The key of `parts`, joined by NUL (which configurations, scopes and field names do
    /// not hold).
    pub(crate) fn key(parts: &[&str]) -> String {
        parts.join("\u{0}")
    }

    /// The kept answer for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.0.lock().expect("memo lock").get(key).cloned()
    }

    /// Keeps `value` for `key`; past [`CAPACITY`] entries the memo starts over.
    pub(crate) fn put(&self, key: String, value: V) {
        let mut map = self.0.lock().expect("memo lock");
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_answers_by_key_and_starts_over_when_full() {
        let memo = Memo::<u32>::default();
        assert_eq!(memo.get("a"), None);
        memo.put(Memo::<u32>::key(&["a", "b"]), 1);
        assert_eq!(memo.get("a\u{0}b"), Some(1));
        for i in 0..CAPACITY {
            memo.put(format!("k{i}"), 2);
        }
        assert_eq!(memo.get("a\u{0}b"), None, "a full memo starts over");
        assert!(memo.0.lock().unwrap().len() <= CAPACITY);
    }
}
