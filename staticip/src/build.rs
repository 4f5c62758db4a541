//! The objects the controller creates for a pool, built in pure code: one `StaticIP` per address
//! and one keytab Secret per address with a principal.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::addresses::PlannedAddress;
use crate::crd::{ADDRESS_FINALIZER, KEYTAB_KEY, POOL_LABEL, StaticIP, StaticIPPool, StaticIPSpec};

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "staticip-controller";

fn labels(pool: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POOL_LABEL.to_owned(), pool.to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            FIELD_MANAGER.to_owned(),
        ),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "elastic-yarn".to_owned(),
        ),
    ])
}

/// The `StaticIP` of one planned address, owned by its pool, with the cleanup finalizer.
pub fn static_ip(pool: &StaticIPPool, planned: &PlannedAddress) -> StaticIP {
    let pool_name = pool.name_any();
    StaticIP {
        metadata: ObjectMeta {
            name: Some(planned.object_name.clone()),
            labels: Some(labels(&pool_name)),
            finalizers: Some(vec![ADDRESS_FINALIZER.to_owned()]),
            owner_references: pool.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: StaticIPSpec {
            address: planned.ip.to_string(),
            pool: pool_name,
            host_name: planned.host_name.clone(),
            fqdn: planned.fqdn.clone(),
            principal: planned.principal.clone(),
        },
        status: None,
    }
}

/// Name of the keytab Secret of an address.
pub fn keytab_secret_name(address: &StaticIP) -> String {
    format!("{}-keytab", address.name_any())
}

fn owner(address: &StaticIP) -> Option<OwnerReference> {
    // Not a controller reference: a namespaced Secret may name a cluster-scoped owner, and the
    // garbage collector removes the Secret with its address.
    address.object_ref(&()).uid.map(|uid| OwnerReference {
        api_version: StaticIP::api_version(&()).into_owned(),
        kind: StaticIP::kind(&()).into_owned(),
        name: address.name_any(),
        uid,
        ..OwnerReference::default()
    })
}

/// The keytab Secret of an address, in `namespace`.
pub fn keytab_secret(address: &StaticIP, namespace: &str, keytab: Vec<u8>) -> Secret {
    let mut labels = labels(&address.spec.pool);
    labels.insert(
        "app.kubernetes.io/component".to_owned(),
        "nodemanager-keytab".to_owned(),
    );
    let mut annotations =
        BTreeMap::from([("elasticyarn.io/fqdn".to_owned(), address.spec.fqdn.clone())]);
    if let Some(principal) = &address.spec.principal {
        annotations.insert("elasticyarn.io/principal".to_owned(), principal.clone());
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(keytab_secret_name(address)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner(address).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            KEYTAB_KEY.to_owned(),
            ByteString(keytab),
        )])),
        ..Secret::default()
    }
}
