//! Actors by id and by registered name.
//!
//! A name maps to exactly one live actor; registering a taken name fails (OTP's
//! `already_started`), and a name is freed when its actor is removed.

use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::actor::Actor;
use crate::util::ids::ActorId;

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // fields: the name, and the id of the actor holding it
pub enum RegisterError {
    /// The name belongs to another live actor.
    AlreadyStarted { name: String, id: ActorId },
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::AlreadyStarted { name, id } => {
                write!(
                    f,
                    "already_started: the name `{name}` is taken by actor {id}"
                )
            }
        }
    }
}

impl std::error::Error for RegisterError {}

/// The table of live actors.
///
/// Both maps hold the actor itself, so a send by name is one lookup. Fx hashing: keys are
/// host-made ids and operator-chosen names, not attacker-controlled input, and the lookup
/// is on every message's path.
#[derive(Default)]
pub struct Registry {
    by_id: RwLock<FxHashMap<ActorId, Arc<Actor>>>,
    by_name: RwLock<FxHashMap<String, Arc<Actor>>>,
}

impl Registry {
    /// Adds a live actor, registering its name if it has one. Both happen under the name
    /// lock, so two spawns racing for one name cannot both succeed.
    pub fn insert(&self, actor: Arc<Actor>) -> Result<(), RegisterError> {
        let Some(name) = &actor.name else {
            // No name to race for: the name lock stays free for sends by name.
            self.by_id.write().insert(actor.id, actor);
            return Ok(());
        };
        let mut names = self.by_name.write();
        if let Some(other) = names.get(name) {
            return Err(RegisterError::AlreadyStarted {
                name: name.clone(),
                id: other.id,
            });
        }
        names.insert(name.clone(), actor.clone());
        self.by_id.write().insert(actor.id, actor);
        Ok(())
    }

    /// Removes an actor and frees its name.
    pub fn remove(&self, id: ActorId) -> Option<Arc<Actor>> {
        let actor = self.by_id.write().remove(&id)?;
        if let Some(name) = &actor.name {
            let mut names = self.by_name.write();
            if names.get(name).is_some_and(|a| a.id == id) {
                names.remove(name);
            }
        }
        Some(actor)
    }

    /// The actor with this id.
    pub fn get(&self, id: ActorId) -> Option<Arc<Actor>> {
        self.by_id.read().get(&id).cloned()
    }

    /// Runs `f` on the actor with this id, under the read lock (no reference-count
    /// traffic on the hot send path).
    pub fn with_id<R>(&self, id: ActorId, f: impl FnOnce(&Arc<Actor>) -> R) -> Option<R> {
        self.by_id.read().get(&id).map(f)
    }

    /// Runs `f` on the actor registered under `name`, under the read lock.
    pub fn with_name<R>(&self, name: &str, f: impl FnOnce(&Arc<Actor>) -> R) -> Option<R> {
        self.by_name.read().get(name).map(f)
    }

    /// The id registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<ActorId> {
        self.by_name.read().get(name).map(|a| a.id)
    }

    /// The actor registered under `name`.
    pub fn by_name(&self, name: &str) -> Option<Arc<Actor>> {
        self.by_name.read().get(name).cloned()
    }

    /// Every live actor whose behaviour satisfies `pred`, ordered by id.
    pub fn select(&self, mut pred: impl FnMut(&Actor) -> bool) -> Vec<Arc<Actor>> {
        let mut v: Vec<Arc<Actor>> = self
            .by_id
            .read()
            .values()
            .filter(|a| pred(a))
            .cloned()
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// Number of live actors.
    pub fn len(&self) -> usize {
        self.by_id.read().len()
    }
}
