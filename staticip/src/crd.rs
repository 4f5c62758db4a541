//! `StaticIPPool` (cluster-scoped: which addresses, how they are named, their DNS records and
//! Kerberos principals) and `StaticIP` (one per address: who holds it, whether its DNS records and
//! keytab are ready). API group `elasticyarn.io`, version `v1alpha1`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label on every `StaticIP` naming its pool (lists select by it).
pub const POOL_LABEL: &str = "elasticyarn.io/static-ip-pool";
/// Finalizer on a `StaticIP`: its DNS records, principal and keytab Secret are removed first.
pub const ADDRESS_FINALIZER: &str = "elasticyarn.io/staticip-cleanup";
/// Finalizer on a `StaticIPPool`: it goes only when none of its addresses is held.
pub const POOL_FINALIZER: &str = "elasticyarn.io/staticip-pool";
/// Key of the keytab in each address's keytab Secret.
pub const KEYTAB_KEY: &str = "krb5.keytab";

/// A fixed set of IP addresses for YARN NodeManagers, each with a host name, DNS A and PTR
/// records and a Kerberos principal made ahead of time, so an NM pod that claims one starts at
/// once under a host name the ResourceManager's whitelist and keytabs already know.
#[allow(
    clippy::duplicated_attributes,
    reason = "every printcolumn(...) of kube's derive names its own type_"
)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "elasticyarn.io",
    version = "v1alpha1",
    kind = "StaticIPPool",
    plural = "staticippools",
    singular = "staticippool",
    shortname = "sipp",
    category = "elasticyarn",
    cel,
    status = "StaticIPPoolStatus",
    doc = "A fixed pool of IP addresses for YARN NodeManagers, with DNS records and Kerberos keytabs made ahead of time.",
    printcolumn(name = "Total", type_ = "integer", json_path = ".status.total"),
    printcolumn(name = "Free", type_ = "integer", json_path = ".status.free"),
    printcolumn(name = "Bound", type_ = "integer", json_path = ".status.bound"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.cidr) || size(self.ranges) > 0").message("set cidr or ranges"))]
#[serde(rename_all = "camelCase")]
pub struct StaticIPPoolSpec {
    /// The addresses as one CIDR block (network and broadcast addresses of IPv4 blocks of /30
    /// and larger are left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// The addresses as inclusive ranges, alone or besides `cidr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<AddressRange>,
    /// Addresses never handed out (gateways, addresses used elsewhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved: Vec<String>,
    /// Host name of each address: `{ip}` is the address with `-` for `.` and `:`, `{index}` its
    /// position in the pool, `{pool}` the pool's name. The result must be a DNS label.
    #[serde(default = "default_host_name_template")]
    #[schemars(length(min = 1, max = 63))]
    pub host_name_template: String,
    /// DNS zone the host names live in: the FQDN is `<host name>.<dnsZone>`.
    #[schemars(length(min = 1, max = 253))]
    pub dns_zone: String,
    /// How an NM pod asks its CNI plugin for the address.
    #[serde(default)]
    pub cni: CniSpec,
    /// Namespace of the keytab Secrets (the namespace of the `ElasticNodePool`s that use this
    /// pool: a pod can mount only Secrets of its own namespace).
    #[schemars(length(min = 1, max = 63))]
    pub secret_namespace: String,
    /// DNS server taking RFC 2136 updates signed with TSIG; without it no records are made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,
    /// Kerberos realm and admin server; without it no principals or keytabs are made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<KerberosSpec>,
    /// A claim whose pod does not exist after this long is released.
    #[serde(default = "default_claim_timeout")]
    #[schemars(range(min = 30))]
    pub claim_timeout_seconds: u32,
}

fn default_host_name_template() -> String {
    "nm-{ip}".to_owned()
}

fn default_claim_timeout() -> u32 {
    600
}

/// An inclusive range of addresses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct AddressRange {
    /// First address.
    pub start: String,
    /// Last address.
    pub end: String,
}

/// How the pod's CNI plugin is asked for a fixed address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("self.style != 'Custom' || has(self.annotationKey)").message("style Custom needs annotationKey"))]
#[serde(rename_all = "camelCase")]
pub struct CniSpec {
    /// `Calico` (`cni.projectcalico.org/ipAddrs`, a JSON list), `KubeOvn`
    /// (`ovn.kubernetes.io/ip_address`) or `Custom`.
    #[serde(default)]
    pub style: CniStyle,
    /// Annotation key for `Custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_key: Option<String>,
    /// Value format for `Custom`: the bare address or a JSON list of it.
    #[serde(default)]
    pub value_format: CniValueFormat,
}

/// The CNI plugins whose annotation is known.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CniStyle {
    /// Calico: `cni.projectcalico.org/ipAddrs: '["10.0.0.5"]'`.
    #[default]
    Calico,
    /// Kube-OVN: `ovn.kubernetes.io/ip_address: 10.0.0.5`.
    KubeOvn,
    /// Another plugin: `annotationKey` with `valueFormat`.
    Custom,
}

/// How a custom annotation writes the address.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CniValueFormat {
    /// `10.0.0.5`
    #[default]
    Address,
    /// `["10.0.0.5"]`
    JsonList,
}

/// A key in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace.
    pub namespace: String,
    /// Key in the Secret's data.
    pub key: String,
}

/// The authoritative DNS server and how to sign updates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsSpec {
    /// `host:port` of the primary server of both zones (port 53 when left out).
    #[schemars(length(min = 1))]
    pub server: String,
    /// The TSIG key's name as the server knows it.
    #[schemars(length(min = 1))]
    pub tsig_key_name: String,
    /// HMAC algorithm of the key.
    #[serde(default)]
    pub tsig_algorithm: TsigAlgorithm,
    /// Secret holding the key, base64 as in `named.conf` (`tsig-keygen` output).
    pub tsig_secret: SecretKeyRef,
    /// Reverse zone for PTR records; by default the `in-addr.arpa`/`ip6.arpa` zone on the octet
    /// (nibble) boundary that holds every address of the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_zone: Option<String>,
    /// TTL of the records, seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    300
}

/// TSIG HMAC algorithms.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TsigAlgorithm {
    /// `hmac-sha256` (the `tsig-keygen` default).
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// `hmac-sha384`
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    /// `hmac-sha512`
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

/// The realm, its servers, and the administrator that creates principals.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KerberosSpec {
    /// Realm, e.g. `EXAMPLE.COM`.
    #[schemars(length(min = 1))]
    pub realm: String,
    /// KDCs as `host[:port]`.
    #[schemars(length(min = 1))]
    pub kdcs: Vec<String>,
    /// kadmind as `host[:port]`.
    #[schemars(length(min = 1))]
    pub admin_server: String,
    /// Principal allowed to add, export and delete NM principals.
    #[schemars(length(min = 1))]
    pub admin_principal: String,
    /// Secret holding the administrator's keytab.
    pub admin_keytab: SecretKeyRef,
    /// NM principal of each address: `{fqdn}`, `{host}` and `{realm}` are replaced.
    #[serde(default = "default_principal_template")]
    pub principal_template: String,
}

fn default_principal_template() -> String {
    "nm/{fqdn}@{realm}".to_owned()
}

/// What the controller observed of a pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticIPPoolStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `AddressesValid`, `DnsReady`, `KeytabsReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Addresses in the pool.
    #[serde(default)]
    pub total: u32,
    /// Ready and free to claim.
    #[serde(default)]
    pub free: u32,
    /// Claimed, pod not yet running on it.
    #[serde(default)]
    pub claimed: u32,
    /// Held by a running pod.
    #[serde(default)]
    pub bound: u32,
    /// DNS records and keytab (as configured) made.
    #[serde(default)]
    pub ready: u32,
    /// Removed from the spec but still held: they go once released.
    #[serde(default)]
    pub retiring: u32,
}

/// One address of a pool: its names and who holds it.
#[allow(
    clippy::duplicated_attributes,
    reason = "every printcolumn(...) of kube's derive names its own type_"
)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "elasticyarn.io",
    version = "v1alpha1",
    kind = "StaticIP",
    plural = "staticips",
    singular = "staticip",
    shortname = "sip",
    category = "elasticyarn",
    status = "StaticIPStatus",
    doc = "One address of a StaticIPPool: its host name, and which NodeManager pod holds it.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.address"),
    printcolumn(name = "FQDN", type_ = "string", json_path = ".spec.fqdn"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Holder", type_ = "string", json_path = ".status.holder.pod"),
    printcolumn(name = "Ready", type_ = "boolean", json_path = ".status.ready")
)]
#[serde(rename_all = "camelCase")]
pub struct StaticIPSpec {
    /// The address.
    pub address: String,
    /// Its pool.
    pub pool: String,
    /// Host name (a DNS label).
    pub host_name: String,
    /// Fully qualified name: the A record's name and the PTR record's target.
    pub fqdn: String,
    /// The NM's Kerberos principal, when the pool has a realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// Claim phase of an address.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AddressPhase {
    /// Nobody holds it.
    #[default]
    Free,
    /// Claimed for an NM whose pod is not running on it yet.
    Claimed,
    /// The NM's pod runs on it.
    Bound,
}

/// Who holds an address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The NM identity claims are sticky to (`<namespace>/<pool>/<node>` for the operator).
    pub identity: String,
    /// Namespace of the holder pod.
    pub namespace: String,
    /// Name of the holder pod.
    pub pod: String,
    /// UID of the holder pod, once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// State of one address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticIPStatus {
    /// Free, Claimed or Bound.
    #[serde(default)]
    pub phase: AddressPhase,
    /// The holder, unless free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    /// When the current claim was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
    /// The identity that held it last: it gets this address back first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_holder: Option<String>,
    /// The A and PTR records exist.
    #[serde(default)]
    pub dns_ready: bool,
    /// The principal exists and its keytab is in `keytabSecret`.
    #[serde(default)]
    pub keytab_ready: bool,
    /// Everything the pool configures (DNS, keytab) is made: the address can be claimed.
    #[serde(default)]
    pub ready: bool,
    /// Name of the keytab Secret (in the pool's `secretNamespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keytab_secret: Option<String>,
    /// Why DNS or the keytab is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StaticIP {
    /// The status, or the state of an address nobody has touched yet.
    pub fn state(&self) -> StaticIPStatus {
        self.status.clone().unwrap_or_default()
    }

    /// Whether nobody holds it.
    pub fn is_free(&self) -> bool {
        self.status
            .as_ref()
            .is_none_or(|s| s.holder.is_none() && s.phase == AddressPhase::Free)
    }

    /// The holder's identity, if held.
    pub fn holder_identity(&self) -> Option<&str> {
        self.status
            .as_ref()
            .and_then(|s| s.holder.as_ref())
            .map(|h| h.identity.as_str())
    }

    /// Whether it is being deleted (removed from the pool).
    pub fn is_retiring(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
}
