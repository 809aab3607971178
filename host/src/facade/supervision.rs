//! The supervision thread's view of the host: how it spawns, signals, answers and
//! reports, through the actor system and the code server.

use std::sync::Arc;

use plugin_api::Reason;

use crate::code::Code;
use crate::observe::{HostEvent, Observer};
use crate::supervisor::ChildHost;
use crate::system::{SpawnError, System, Target};
use crate::util::ids::ActorId;
use crate::util::terms;

/// The real [`ChildHost`].
pub(super) struct Children {
    pub(super) system: Arc<System>,
    pub(super) code: Arc<Code>,
    pub(super) observer: Arc<Observer>,
}

impl ChildHost for Children {
    fn new_supervisor(&self) -> ActorId {
        let id = self.system.next_actor_id();
        self.system.register_supervisor(id);
        id
    }

    fn forget_supervisor(&self, id: ActorId) {
        self.system.unregister_supervisor(id);
    }

    fn spawn(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
        link: ActorId,
    ) -> Result<ActorId, SpawnError> {
        self.code.spawn(behaviour, name, args, Some(link))
    }

    fn exit(&self, from: ActorId, to: ActorId, reason: &Reason) -> bool {
        self.system
            .exit_signal(from, Target::Id(to), terms::reason(reason))
            .is_ok()
    }

    fn reply(&self, to: ActorId, tag: u64, payload: &[u8]) {
        self.system.deliver_reply(to, tag, payload);
    }

    fn report(&self, ev: HostEvent) {
        self.observer.publish(ev);
    }
}
