//! NodeManager ids as YARN writes them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A NodeManager's id as YARN writes it: `host:port` (the NM's RPC port).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId {
    host: String,
    port: u16,
}

impl NodeId {
    /// A node id from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> Result<NodeId, String> {
        let host = host.into();
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == ':')
        {
            return Err(format!("{host:?} is not a host name"));
        }
        Ok(NodeId { host, port })
    }

    /// The NM's host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The NM's RPC port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for NodeId {
    type Err = String;

    fn from_str(text: &str) -> Result<NodeId, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("node id {text:?} is not host:port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("node id {text:?} has no valid port"))?;
        NodeId::new(host, port).map_err(|err| format!("node id {text:?}: {err}"))
    }
}

impl TryFrom<String> for NodeId {
    type Error = String;

    fn try_from(text: String) -> Result<NodeId, String> {
        text.parse()
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.to_string()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}
