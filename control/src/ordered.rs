//! A map that keeps its values in the order they were inserted and that is copied in O(1):
//! what lets rvsd copy its whole model before every change (to put it back if the change
//! cannot be published, or to apply a batch all or nothing) whatever the number of services.
//!
//! Both indexes are persistent collections from `imbl`: a copy shares everything with the
//! original, and a change copies only the few tree nodes on its path (O(log n)). Values sit
//! behind an `Arc`, so such a node copy copies pointers, not services.

use imbl::{HashMap, OrdMap};
use std::hash::Hash;
use std::sync::Arc;

/// Values by key, iterated in insertion order.
#[derive(Debug, Clone)]
pub struct Ordered<K: Hash + Eq + Clone, V> {
    /// Values by insertion number.
    values: OrdMap<u64, Arc<V>>,
    /// Each key's insertion number.
    numbers: HashMap<K, u64>,
    /// The insertion number of the next new key.
    next: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Default for Ordered<K, V> {
    fn default() -> Self {
        Ordered {
            values: OrdMap::new(),
            numbers: HashMap::new(),
            next: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Ordered<K, V> {
    /// The number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        let n = self.numbers.get(key)?;
        self.values.get(n).map(Arc::as_ref)
    }

    /// The value of `key`, to change in place (copied first if a copy of the map shares it).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let n = self.numbers.get(key)?;
        self.values.get_mut(n).map(Arc::make_mut)
    }

    /// Sets the value of `key`: in its place if it has one, else after every other.
    pub fn insert(&mut self, key: K, value: V) {
        let n = match self.numbers.get(&key) {
            Some(&n) => n,
            None => {
                let n = self.next;
                self.next += 1;
                self.numbers.insert(key, n);
                n
            }
        };
        self.values.insert(n, Arc::new(value));
    }

    /// Removes `key`; its value, if it had one.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let n = self.numbers.remove(key)?;
        let value = self.values.remove(&n)?;
        Some(Arc::try_unwrap(value).unwrap_or_else(|shared| V::clone(&shared)))
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.values.clear();
        self.numbers.clear();
    }

    /// The values in insertion order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + '_ {
        self.values.values().map(Arc::as_ref)
    }
}

impl<K: Hash + Eq + Clone, V: Clone + PartialEq> PartialEq for Ordered<K, V> {
    /// The same values in the same order (insertion numbers themselves do not matter).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Hash + Eq + Clone, V: Clone + Eq> Eq for Ordered<K, V> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(m: &Ordered<&'static str, u32>) -> Vec<u32> {
        m.iter().copied().collect()
    }

    #[test]
    fn keeps_insertion_order_through_changes() {
        let mut m = Ordered::default();
        for (k, v) in [("c", 1), ("a", 2), ("b", 3)] {
            m.insert(k, v);
        }
        assert_eq!(collect(&m), [1, 2, 3]);
        m.insert("a", 20); // a value replaced keeps its place
        assert_eq!(collect(&m), [1, 20, 3]);
        assert_eq!(m.remove(&"c"), Some(1));
        assert_eq!(m.remove(&"c"), None);
        m.insert("c", 4); // re-inserted: last
        assert_eq!(collect(&m), [20, 3, 4]);
        if let Some(v) = m.get_mut(&"b") {
            *v = 30;
        }
        assert_eq!((m.get(&"b"), m.get(&"z"), m.len()), (Some(&30), None, 3));
        m.clear();
        assert!(m.len() == 0 && m.get(&"a").is_none());
    }

    #[test]
    fn a_copy_is_independent_and_equality_ignores_numbering() {
        let mut m = Ordered::default();
        m.insert("a", 1);
        m.insert("b", 2);
        let copy = m.clone();
        if let Some(v) = m.get_mut(&"a") {
            *v = 10;
        }
        m.remove(&"b");
        assert_eq!((collect(&copy), collect(&m)), (vec![1, 2], vec![10]));
        // The same content reached by another history is equal.
        let mut other = Ordered::default();
        other.insert("x", 0);
        other.remove(&"x");
        other.insert("a", 10);
        assert_eq!(m, other);
        other.insert("b", 2);
        assert_ne!(m, other);
    }
}
