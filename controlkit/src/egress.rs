//! Which addresses the operator may call on a pool's behalf. A pool spec names the RM and
//! Prometheus URLs, and whoever may write pools in a namespace would otherwise make the operator
//! call anything its network reaches: the node's link-local metadata service, its own loopback,
//! the Kubernetes API server. Those are denied unless the installation allows them.
//!
//! Checked twice: before a pool's clients are built (every address a name resolves to, and IP
//! literals), and at every connection through the clients' DNS resolver, so a name that
//! resolves elsewhere later (DNS rebinding) is still refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Ranges a pool's URLs may never reach unless allowed: loopback, link-local (cloud metadata),
/// unspecified, multicast and broadcast.
pub const ALWAYS_DENIED: [&str; 8] = [
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "0.0.0.0/32",
    "::/128",
    "224.0.0.0/4",
    "255.255.255.255/32",
];

/// The installation's egress policy for pool-named URLs.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    /// Denied ranges: [`ALWAYS_DENIED`], the API server's addresses and the installation's own.
    denied: Vec<IpNet>,
    /// Host names denied whatever they resolve to (the API server's).
    denied_hosts: Vec<String>,
    /// Ranges allowed even when denied above (an RM on loopback in a test, a lab network).
    allowed: Vec<IpNet>,
}

/// Why a URL may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url} is not allowed: {why} (the operator's egress policy; see --allow-egress-cidr)")]
pub struct EgressDenied {
    /// The URL, without credentials.
    pub url: String,
    /// What matched.
    pub why: String,
}

impl EgressPolicy {
    /// The policy: the built-in denials, the API server (`api_server`: its URL), `deny` and
    /// `allow` from the installation.
    pub fn new(api_server: Option<&Url>, deny: Vec<IpNet>, allow: Vec<IpNet>) -> EgressPolicy {
        let mut denied: Vec<IpNet> = ALWAYS_DENIED
            .iter()
            .filter_map(|net| net.parse().ok())
            .collect();
        denied.extend(deny);
        let mut denied_hosts = vec![
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
        ];
        match api_server.and_then(Url::host) {
            Some(Host::Ipv4(ip)) => denied.push(IpNet::from(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => denied.push(IpNet::from(IpAddr::V6(ip))),
            Some(Host::Domain(name)) => denied_hosts.push(name.to_ascii_lowercase()),
            None => {}
        }
        EgressPolicy {
            denied,
            denied_hosts,
            allowed: allow,
        }
    }

    /// Allows everything: for the command-line tools, where the admin typed the URL.
    pub fn unrestricted() -> EgressPolicy {
        EgressPolicy::default()
    }

    /// Why `ip` is denied, if it is.
    pub fn denies_ip(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        self.denied
            .iter()
            .find(|net| net.contains(&ip))
            .map(|net| format!("{ip} is in the denied range {net}"))
    }

    fn denies_host(&self, host: &str) -> Option<String> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.denied_hosts
            .iter()
            .any(|denied| host == *denied || host.starts_with(&format!("{denied}.")))
            .then(|| format!("{host} is the Kubernetes API server"))
    }

    /// Checks `url` and every address its host resolves to now. A name that does not resolve
    /// passes: the call will fail on its own, and the resolver checks again at connection.
    pub async fn check(&self, url: &Url) -> Result<(), EgressDenied> {
        let denied = |why: String| EgressDenied {
            url: without_credentials(url),
            why,
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let why = match url.host() {
            Some(Host::Ipv4(ip)) => self.denies_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.denies_ip(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => match self.denies_host(name) {
                Some(why) => Some(why),
                None => tokio::net::lookup_host((name, port))
                    .await
                    .ok()
                    .into_iter()
                    .flatten()
                    .find_map(|address| self.denies_ip(address.ip())),
            },
            None => Some("it names no host".to_owned()),
        };
        why.map_or(Ok(()), |why| Err(denied(why)))
    }

    /// A DNS resolver for reqwest that drops denied addresses (and refuses when none remain).
    pub fn resolver(self: &Arc<Self>) -> Arc<dyn reqwest::dns::Resolve> {
        Arc::new(FilteringResolver(self.clone()))
    }
}

fn without_credentials(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

struct FilteringResolver(Arc<EgressPolicy>);

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            if let Some(why) = policy.denies_host(&host) {
                return Err(why.into());
            }
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|address| policy.denies_ip(address.ip()).is_none())
                .collect();
            if permitted.is_empty() && !resolved.is_empty() {
                let why = resolved
                    .iter()
                    .find_map(|address| policy.denies_ip(address.ip()))
                    .unwrap_or_default();
                return Err(format!("{host}: {why} (the operator's egress policy)").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            Some(&Url::parse("https://10.96.0.1:443").unwrap()),
            vec!["192.168.100.0/24".parse().unwrap()],
            allow.iter().map(|net| net.parse().unwrap()).collect(),
        )
    }

    #[rstest::rstest]
    #[case::cloud_metadata("http://169.254.169.254/latest/meta-data/")]
    #[case::loopback("http://127.0.0.1:10250/")]
    #[case::loopback_name("http://localhost:8088/")]
    #[case::ipv6_loopback("http://[::1]:8088/")]
    #[case::mapped_loopback("http://[::ffff:127.0.0.1]:8088/")]
    #[case::api_server_ip("https://10.96.0.1/")]
    #[case::api_server_name("https://kubernetes.default.svc.cluster.local/")]
    #[case::installation_range("http://192.168.100.7:8088/")]
    #[case::credentials_hidden("http://user:secret@169.254.169.254/")]
    #[tokio::test]
    async fn pool_urls_may_not_reach_what_the_operator_itself_can(#[case] url: &str) {
        let error = policy(&[])
            .check(&Url::parse(url).unwrap())
            .await
            .unwrap_err();
        assert!(!error.url.contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn ordinary_addresses_and_allowed_ranges_pass() {
        for url in ["http://10.20.0.5:8088/", "https://rm.example.com:8090/"] {
            assert_eq!(policy(&[]).check(&Url::parse(url).unwrap()).await, Ok(()));
        }
        let lab = policy(&["127.0.0.0/8"]);
        assert_eq!(
            lab.check(&Url::parse("http://127.0.0.1:8088/").unwrap())
                .await,
            Ok(())
        );
        assert!(
            lab.check(&Url::parse("http://169.254.169.254/").unwrap())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_denied_addresses() {
        let policy = Arc::new(policy(&[]));
        let resolver = policy.resolver();
        let error = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost is loopback");
        assert!(error.to_string().contains("denied range"), "{error}");
        let allowed = Arc::new(EgressPolicy::new(
            None,
            Vec::new(),
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        ));
        let addresses: Vec<SocketAddr> = allowed
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .expect("allowed")
            .collect();
        assert!(!addresses.is_empty());
    }
}
