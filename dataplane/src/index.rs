//! Receiver index → peer, for routing incoming data messages to their keypairs.
//!
//! Indices are random 32-bit values chosen by control per handshake (as WireGuard does, so they
//! reveal nothing); control inserts and removes them, workers only look them up under a read
//! lock, running the whole decryption inside the lookup so no reference count is touched per
//! packet.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::peer::PeerShared;

/// The node's table of live receiver indices.
#[derive(Debug, Default)]
pub struct IndexTable {
    map: RwLock<HashMap<u32, Arc<PeerShared>>>,
}

impl IndexTable {
    /// An empty table.
    pub fn new() -> Self {
        IndexTable::default()
    }

    /// Points `index` at `peer`.
    pub fn insert(&self, index: u32, peer: Arc<PeerShared>) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(index, peer);
    }

    /// Forgets `index`.
    pub fn remove(&self, index: u32) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&index);
    }

    /// Whether `index` is in use.
    pub fn contains(&self, index: u32) -> bool {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&index)
    }

    /// Runs `f` on the peer holding `index`, if any, under the read lock.
    pub fn with<R>(&self, index: u32, f: impl FnOnce(&PeerShared) -> R) -> Option<R> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&index)
            .map(|peer| f(peer))
    }
}
