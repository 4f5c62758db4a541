//! Any body the RM (or something in its place) answers: decoded into nodes, a node or a
//! RemoteException, or refused, never a panic; the capacities read from what decodes are
//! computed without overflow.

#![no_main]

use libfuzzer_sys::fuzz_target;
use yarn_rm::error::RemoteException;
use yarn_rm::rest::{decode_node, decode_nodes};

fuzz_target!(|data: &[u8]| {
    if let Ok(nodes) = decode_nodes(data) {
        for node in nodes {
            let _ = (node.capacity(), node.used());
        }
    }
    if let Ok(node) = decode_node(data) {
        let _ = (node.capacity(), node.used());
    }
    let _ = RemoteException::parse(data);
});
