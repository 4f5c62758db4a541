//! The pod annotation that asks the CNI plugin for a fixed address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::crd::{CniSpec, CniStyle, CniValueFormat};

/// Calico's annotation: a JSON list of addresses.
pub const CALICO_IP_ADDRS: &str = "cni.projectcalico.org/ipAddrs";
/// Kube-OVN's annotation: the bare address.
pub const KUBE_OVN_IP_ADDRESS: &str = "ovn.kubernetes.io/ip_address";

/// The annotations an NM pod needs to get `ip`, or `None` for a `Custom` style without a key
/// (the CRD schema refuses that).
pub fn annotations(cni: &CniSpec, ip: IpAddr) -> Option<BTreeMap<String, String>> {
    let list = || format!("[\"{ip}\"]");
    let (key, value) = match cni.style {
        CniStyle::Calico => (CALICO_IP_ADDRS.to_owned(), list()),
        CniStyle::KubeOvn => (KUBE_OVN_IP_ADDRESS.to_owned(), ip.to_string()),
        CniStyle::Custom => (
            cni.annotation_key.clone()?,
            match cni.value_format {
                CniValueFormat::Address => ip.to_string(),
                CniValueFormat::JsonList => list(),
            },
        ),
    };
    Some(BTreeMap::from([(key, value)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cni(style: CniStyle, key: Option<&str>, format: CniValueFormat) -> CniSpec {
        CniSpec {
            style,
            annotation_key: key.map(str::to_owned),
            value_format: format,
        }
    }

    #[test]
    fn each_style_writes_its_annotation() {
        let ip: IpAddr = "10.20.0.5".parse().unwrap();
        let one = |spec: CniSpec| annotations(&spec, ip).map(|a| a.into_iter().collect::<Vec<_>>());
        assert_eq!(
            one(cni(CniStyle::Calico, None, CniValueFormat::Address)),
            Some(vec![(CALICO_IP_ADDRS.into(), "[\"10.20.0.5\"]".into())])
        );
        assert_eq!(
            one(cni(CniStyle::KubeOvn, None, CniValueFormat::JsonList)),
            Some(vec![(KUBE_OVN_IP_ADDRESS.into(), "10.20.0.5".into())])
        );
        assert_eq!(
            one(cni(
                CniStyle::Custom,
                Some("example.com/ip"),
                CniValueFormat::JsonList
            )),
            Some(vec![("example.com/ip".into(), "[\"10.20.0.5\"]".into())])
        );
        assert_eq!(
            one(cni(CniStyle::Custom, None, CniValueFormat::Address)),
            None
        );
    }

    #[test]
    fn the_calico_value_is_a_json_list() {
        let ip: IpAddr = "fd00::5".parse().unwrap();
        let spec = cni(CniStyle::Calico, None, CniValueFormat::Address);
        let value = &annotations(&spec, ip).unwrap()[CALICO_IP_ADDRS];
        let parsed: Vec<String> = serde_json::from_str(value).unwrap();
        assert_eq!(parsed, ["fd00::5"]);
    }
}
