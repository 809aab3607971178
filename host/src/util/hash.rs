//! The content hash of a library file: what tells two builds apart. The watcher hashes a
//! file as it checks it has settled, the loader hashes the bytes it maps; both use this
//! one type.

/// A content hash of a library file (blake3).
pub type ContentHash = [u8; 32];

/// Hashes `bytes`.
pub fn of_bytes(bytes: &[u8]) -> ContentHash {
    *blake3::hash(bytes).as_bytes()
}

/// First 12 hex digits of a hash, for logs.
pub fn short(hash: &ContentHash) -> String {
    hash[..6].iter().map(|b| format!("{b:02x}")).collect()
}
