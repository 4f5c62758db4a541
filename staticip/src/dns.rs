//! DNS records of an address: A (or AAAA) and PTR, written with RFC 2136 dynamic updates signed
//! with TSIG (RFC 8945) to the zones' primary server over TCP.
//!
//! Each update is idempotent: it deletes the name's record set of that type and adds the one
//! record in the same message, which the server applies atomically. Removing deletes both sets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hickory_client::client::Client;
use hickory_client::proto::ProtoError;
use hickory_client::proto::dnssec::rdata::tsig::TsigAlgorithm as HickoryTsig;
use hickory_client::proto::dnssec::tsig::TSigner;
use hickory_client::proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_client::proto::rr::rdata::{A, AAAA, PTR};
use hickory_client::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::tcp::TcpClientStream;
use hickory_client::proto::xfer::DnsHandle;

use crate::addresses::ptr_name;
use crate::crd::TsigAlgorithm;

/// Why an update failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No answer from the server.
    #[error("DNS server {server} unreachable: {detail}")]
    Unreachable {
        /// `host:port`.
        server: String,
        /// What happened.
        detail: String,
    },
    /// The server refused the TSIG key: wrong secret, name or algorithm, or clocks too far apart.
    #[error("DNS server {server} refused the TSIG key {key}: {detail}")]
    KeyRefused {
        /// `host:port`.
        server: String,
        /// Key name.
        key: String,
        /// The server's answer.
        detail: String,
    },
    /// The server answered the update with an error code.
    #[error("DNS server {server} refused the update of {name} in zone {zone}: {code}")]
    Refused {
        /// `host:port`.
        server: String,
        /// Zone.
        zone: String,
        /// Record name.
        name: String,
        /// Response code.
        code: String,
    },
    /// Bad configuration: names, key, server address.
    #[error("{0}")]
    Config(String),
}

/// Where and how to write records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsTarget {
    /// The primary server, `host:port` or `host`.
    pub server: String,
    /// TSIG key name.
    pub key_name: String,
    /// TSIG algorithm.
    pub algorithm: TsigAlgorithm,
    /// TSIG secret (decoded).
    pub key: Vec<u8>,
    /// Forward zone.
    pub zone: String,
    /// Reverse zone.
    pub reverse_zone: String,
    /// Record TTL, seconds.
    pub ttl: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

fn name(text: &str) -> Result<Name, DnsError> {
    let mut name = Name::from_ascii(text)
        .map_err(|e| DnsError::Config(format!("{text:?} is not a DNS name: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

fn algorithm(algorithm: TsigAlgorithm) -> HickoryTsig {
    match algorithm {
        TsigAlgorithm::HmacSha256 => HickoryTsig::HmacSha256,
        TsigAlgorithm::HmacSha384 => HickoryTsig::HmacSha384,
        TsigAlgorithm::HmacSha512 => HickoryTsig::HmacSha512,
    }
}

/// An update message for `zone` that replaces the `record_type` set of `owner` by `rdata` (or
/// only deletes it when `rdata` is `None`).
pub fn replace_message(
    zone: &Name,
    owner: &Name,
    record_type: RecordType,
    rdata: Option<RData>,
    ttl: u32,
) -> Message {
    let mut message = Message::new();
    message
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Update)
        .set_recursion_desired(false);
    let mut query = Query::new();
    query
        .set_name(zone.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    message.add_zone(query);
    // RFC 2136 2.5.2: delete an RRset — class ANY, TTL 0, empty RDATA.
    let mut delete = Record::update0(owner.clone(), 0, record_type);
    delete.set_dns_class(DNSClass::ANY);
    message.add_update(delete);
    if let Some(rdata) = rdata {
        message.add_update(Record::from_rdata(owner.clone(), ttl, rdata));
    }
    message
}

/// Writes and removes the records of addresses.
#[derive(Debug, Clone)]
pub struct DnsUpdater {
    target: DnsTarget,
}

impl DnsUpdater {
    /// For `target`.
    pub fn new(target: DnsTarget) -> Self {
        DnsUpdater { target }
    }

    async fn server_address(&self) -> Result<SocketAddr, DnsError> {
        let server = &self.target.server;
        let with_port = if server.parse::<SocketAddr>().is_ok() || server.contains("]:") {
            server.clone()
        } else if let Ok(ip) = server.parse::<IpAddr>() {
            SocketAddr::new(ip, 53).to_string()
        } else if server
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            server.clone()
        } else {
            format!("{server}:53")
        };
        tokio::net::lookup_host(&with_port)
            .await
            .ok()
            .and_then(|mut found| found.next())
            .ok_or_else(|| DnsError::Unreachable {
                server: server.clone(),
                detail: "the name does not resolve".to_owned(),
            })
    }

    fn unreachable(&self, error: impl std::fmt::Display) -> DnsError {
        DnsError::Unreachable {
            server: self.target.server.clone(),
            detail: error.to_string(),
        }
    }

    /// Sends one signed update and checks the answer.
    async fn send(&self, message: Message, zone: &str, owner: &str) -> Result<(), DnsError> {
        let address = self.server_address().await?;
        let signer = TSigner::new(
            self.target.key.clone(),
            algorithm(self.target.algorithm),
            name(&self.target.key_name)?,
            300,
        )
        .map_err(|e| DnsError::Config(format!("TSIG key {}: {e}", self.target.key_name)))?;
        let (stream, sender) = TcpClientStream::new(
            address,
            None,
            Some(self.target.timeout),
            TokioRuntimeProvider::new(),
        );
        let (client, background) =
            Client::with_timeout(stream, sender, self.target.timeout, Some(Arc::new(signer)))
                .await
                .map_err(|e| self.unreachable(e))?;
        let background = tokio::spawn(background);
        let answer = client.send(message).next().await;
        background.abort();
        let response = match answer {
            Some(Ok(response)) => response,
            Some(Err(error)) => return Err(self.classify(&error, zone, owner)),
            None => return Err(self.unreachable("the connection closed without an answer")),
        };
        match response.response_code() {
            ResponseCode::NoError => Ok(()),
            code => Err(self.refused(code, zone, owner)),
        }
    }

    fn refused(&self, code: ResponseCode, zone: &str, owner: &str) -> DnsError {
        match code {
            ResponseCode::NotAuth
            | ResponseCode::BADSIG
            | ResponseCode::BADKEY
            | ResponseCode::BADTIME => DnsError::KeyRefused {
                server: self.target.server.clone(),
                key: self.target.key_name.clone(),
                detail: code.to_string(),
            },
            code => DnsError::Refused {
                server: self.target.server.clone(),
                zone: zone.to_owned(),
                name: owner.to_owned(),
                code: code.to_string(),
            },
        }
    }

    fn classify(&self, error: &ProtoError, zone: &str, owner: &str) -> DnsError {
        use hickory_client::proto::ProtoErrorKind;
        match error.kind() {
            ProtoErrorKind::NoRecordsFound { response_code, .. } => {
                self.refused(*response_code, zone, owner)
            }
            // An unsigned or badly signed answer is how a server refuses a key it does not know.
            _ if error.to_string().contains("tsig") || error.to_string().contains("TSIG") => {
                DnsError::KeyRefused {
                    server: self.target.server.clone(),
                    key: self.target.key_name.clone(),
                    detail: error.to_string(),
                }
            }
            _ => self.unreachable(error),
        }
    }

    /// Makes `fqdn` resolve to `ip` and `ip` back to `fqdn`.
    pub async fn upsert(&self, fqdn: &str, ip: IpAddr) -> Result<(), DnsError> {
        self.write(fqdn, ip, true).await
    }

    /// Removes both records.
    pub async fn remove(&self, fqdn: &str, ip: IpAddr) -> Result<(), DnsError> {
        self.write(fqdn, ip, false).await
    }

    async fn write(&self, fqdn: &str, ip: IpAddr, present: bool) -> Result<(), DnsError> {
        let target = &self.target;
        let (zone, reverse_zone) = (name(&target.zone)?, name(&target.reverse_zone)?);
        let (host, pointer) = (name(fqdn)?, name(&ptr_name(ip))?);
        if !zone.zone_of(&host) {
            return Err(DnsError::Config(format!(
                "{fqdn} is not in zone {}",
                target.zone
            )));
        }
        if !reverse_zone.zone_of(&pointer) {
            return Err(DnsError::Config(format!(
                "{ip} is not in reverse zone {}",
                target.reverse_zone
            )));
        }
        let (record_type, address) = match ip {
            IpAddr::V4(v4) => (RecordType::A, RData::A(A(v4))),
            IpAddr::V6(v6) => (RecordType::AAAA, RData::AAAA(AAAA(v6))),
        };
        let forward = replace_message(
            &zone,
            &host,
            record_type,
            present.then_some(address),
            target.ttl,
        );
        self.send(forward, &target.zone, fqdn).await?;
        let back = present.then(|| RData::PTR(PTR(host.clone())));
        let reverse = replace_message(&reverse_zone, &pointer, RecordType::PTR, back, target.ttl);
        self.send(reverse, &target.reverse_zone, &ptr_name(ip))
            .await
    }
}
