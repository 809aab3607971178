//! The code an actor runs: one behaviour of one loaded version, as the actor system sees
//! it — a name, a version string, a content hash and a table of callbacks. The actor
//! system knows nothing of libraries or files; the code server (`crate::code`) makes these
//! from what it loads and keeps the library mapped while any of them is alive.

use std::fmt;
use std::sync::Arc;

use plugin_api::abi::BehaviourDesc;

use crate::util::hash::ContentHash;

/// One behaviour of one loaded library: its identity and its callbacks.
///
/// The function pointers point into the library. Every actor holds an `Arc` to the version
/// running it, and `code::loader::unload` only closes a library whose versions nobody else holds, so
/// a pointer is never called after its library went. `desc`'s string fields point into
/// the library too: use `name` and `version`, which are host-owned copies.
pub struct BehaviourVersion {
    /// Behaviour name.
    pub name: Arc<str>,
    /// Version string the plugin declared.
    pub version: Arc<str>,
    /// Content hash of the library it came from.
    pub hash: ContentHash,
    /// The callbacks.
    pub desc: BehaviourDesc,
}

impl fmt::Debug for BehaviourVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}
