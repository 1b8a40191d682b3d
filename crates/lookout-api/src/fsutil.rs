//! Small file helpers shared by everything that keeps secrets on disk: they live in
//! `lookout-util` (the alert crate writes its files the same way) and are re-exported here.

pub use lookout_util::fs::*;
