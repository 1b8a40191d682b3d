//! Instance keys (mount point, interface, container name, GPU UUID) interned to small integers.
//!
//! A pass looks up one series per (rule, instance): with 1,000 rules over 100 containers that
//! is ~10,000 lookups a second. Keyed by the instance's name, each lookup hashes and compares a
//! string; interned once per pass, each is a multiply and an integer compare (the string work
//! happens once per instance, not once per rule).
//!
//! An id lives while a series holds it ([`Keys::hold`] / [`Keys::release`]) or while its
//! instance is in the current snapshot; the rest are freed at the end of each pass, so
//! containers that come and go under new names do not grow the table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An interned instance key.
pub type KeyId = u32;

/// Hashes a [`KeyId`] by Fibonacci multiplication: ids are small and dense, and hashbrown
/// takes its control bits from the top of the hash, which the multiply fills.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` is used for `KeyId`s; anything else still hashes correctly.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by [`KeyId`].
pub type IdMap<V> = HashMap<KeyId, V, BuildHasherDefault<IdHasher>>;

struct Slot {
    key: String,
    /// Series holding this id.
    holders: u32,
    /// Last pass whose snapshot had this instance.
    seen: u64,
    /// False once freed (the id waits in `free`).
    live: bool,
}

/// The interning table.
#[derive(Default)]
pub struct Keys {
    ids: HashMap<String, KeyId>,
    slots: Vec<Slot>,
    free: Vec<KeyId>,
}

impl Keys {
    /// The id of `key`, interning it if new; marks it seen in `pass`.
    pub fn intern(&mut self, key: &str, pass: u64) -> KeyId {
        if let Some(&id) = self.ids.get(key) {
            self.slots[id as usize].seen = pass;
            return id;
        }
        let slot = Slot {
            key: key.to_owned(),
            holders: 0,
            seen: pass,
            live: true,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as KeyId
            }
        };
        self.ids.insert(key.to_owned(), id);
        id
    }

    /// A series now holds `id`.
    pub fn hold(&mut self, id: KeyId) {
        self.slots[id as usize].holders += 1;
    }

    /// A series holding `id` was dropped.
    pub fn release(&mut self, id: KeyId) {
        let slot = &mut self.slots[id as usize];
        slot.holders = slot.holders.saturating_sub(1);
    }

    /// Frees the ids no series holds and the snapshot of `pass` did not have.
    pub fn sweep(&mut self, pass: u64) {
        for (id, slot) in self.slots.iter_mut().enumerate() {
            if slot.live && slot.holders == 0 && slot.seen != pass {
                self.ids.remove(&slot.key);
                slot.key = String::new();
                slot.live = false;
                self.free.push(id as KeyId);
            }
        }
    }

    /// Ids in use (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_while_seen_and_reused_once_free() {
        let mut k = Keys::default();
        let a = k.intern("web", 1);
        let b = k.intern("db", 1);
        assert_ne!(a, b);
        assert_eq!(k.intern("web", 2), a);
        k.hold(b);
        k.sweep(2);
        // "db" was not seen in pass 2 but a series holds it: kept.
        assert_eq!(k.intern("db", 3), b);
        k.release(b);
        k.sweep(4);
        assert_eq!(k.len(), 0);
        let c = k.intern("cache", 5);
        assert!(c == a || c == b, "a freed id is reused");
        assert_eq!(k.intern("cache", 5), c);
    }
}
