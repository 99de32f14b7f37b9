//! Helpers shared by the integration tests: scratch directories and key files.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rovy_control::keys::PrivateKey;

/// A directory under the system temp dir, unique per process and call, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rovy-fast-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in this directory with permission bits `mode`.
    pub fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private key owning an fc00::/8 address, the same for the same seed. Cached: generating
/// one takes hundreds of scalar multiplications, slow in a debug build.
pub fn fc_key(seed: u64) -> PrivateKey {
    static CACHE: Mutex<BTreeMap<u64, [u8; 32]>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap();
    let bytes = cache
        .entry(seed)
        .or_insert_with(|| *PrivateKey::generate(&mut StdRng::seed_from_u64(seed)).as_bytes());
    PrivateKey::from_bytes(*bytes)
}
