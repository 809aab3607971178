//! Small shared pieces every layer may use, and which use nothing else of the host: ids,
//! the few Erlang terms the host builds itself, the ELF completeness check, and the one
//! content hash.

pub mod elf;
pub mod hash;
pub mod ids;
pub(crate) mod isolated;
pub mod terms;
