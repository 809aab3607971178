//! `Pid` in ETF: an Erlang pid of `nonode@nohost` (what the host's distribution layer
//! translates at the wire), read back from a pid or from the bare integer a state saved
//! before pids were Erlang pids holds.

use plugin_api::etf::{self, ExternalPid, Term, LOCAL_NODE};
use plugin_api::Pid;
use serde::{Deserialize, Serialize};

#[test]
fn a_pid_is_an_erlang_pid_of_the_local_node() {
    for id in [0u64, 7, u32::MAX as u64 + 1, (1 << 63) | 5] {
        let bytes = etf::to_vec(&Pid(id)).unwrap();
        assert_eq!(
            Term::decode(&bytes).unwrap(),
            Term::Pid(ExternalPid {
                node: LOCAL_NODE.into(),
                id: id as u32,
                serial: (id >> 32) as u32,
                creation: 0,
            })
        );
        assert_eq!(etf::from_slice::<Pid>(&bytes).unwrap(), Pid(id));
        // A plugin that typed a pid as u64 still reads it.
        assert_eq!(etf::from_slice::<u64>(&bytes).unwrap(), id);
    }
    assert!(!Pid(7).is_remote());
    assert!(Pid((1 << 63) | 5).is_remote());
}

#[test]
fn a_state_saved_with_integer_pids_still_decodes() {
    #[derive(Serialize)]
    struct Old {
        owner: u64,
        peers: Vec<u64>,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct New {
        owner: Pid,
        peers: Vec<Pid>,
    }
    let old = etf::to_vec(&Old {
        owner: 3,
        peers: vec![4, 1 << 40],
    })
    .unwrap();
    assert_eq!(
        etf::from_slice::<New>(&old).unwrap(),
        New {
            owner: Pid(3),
            peers: vec![Pid(4), Pid(1 << 40)],
        }
    );
}

#[test]
fn a_pid_of_another_node_is_refused_with_its_name() {
    let foreign = Term::Pid(ExternalPid {
        node: "e@127.0.0.1".into(),
        id: 90,
        serial: 0,
        creation: 3,
    })
    .encode();
    let err = etf::from_slice::<Pid>(&foreign).unwrap_err().to_string();
    assert!(err.contains("e@127.0.0.1"), "{err}");
    assert!(etf::from_slice::<Pid>(&etf::to_vec("x").unwrap()).is_err());
}

#[test]
fn other_formats_see_the_id() {
    // A format without a pid (here the text syntax's Term) keeps the number.
    let t: Term = etf::from_slice(&etf::to_vec(&(Pid(9),)).unwrap()).unwrap();
    assert_eq!(t.to_string(), "{#Pid<nonode@nohost.9.0>}");
}
