//! The pure build step: a pool (and, per NodeManager, its node and static address) in, the
//! Kubernetes objects the operator applies out. No client, no clock: `render` prints exactly
//! what the controller would apply.

pub mod names;
mod pod;
pub mod spark;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use crate::crd::{API_GROUP, API_VERSION, ElasticNodePool};

pub use pod::{
    GUARDER_CONTAINER, GUARDER_TOKEN_KEY, GUARDER_TOKEN_PATH, HADOOP_CONF_BINARY,
    HADOOP_CONF_CONTAINER, HADOOP_CONF_DIR, HADOOP_CONF_VOLUME, NM_DAEMON_MEMORY_BYTES,
    NM_DAEMON_MILLI_CORES, NODE_CGROUP_DIR, NODE_MANAGER_CONTAINER, NodeManagerSlot, POOL_CONF_DIR,
    POOL_CONF_VOLUME, StaticAddress, node_manager_pod, yarn_host,
};

/// The pool a child belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolRef {
    /// Pool name.
    pub name: String,
    /// Namespace of the pool and its children.
    pub namespace: String,
    /// UID, for owner references.
    pub uid: String,
}

/// Why a pool cannot be built from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The object has no name, namespace or UID (not yet stored by the API server).
    #[error("the ElasticNodePool has no {0}: it must come from the API server")]
    MissingMetadata(&'static str),
}

impl PoolRef {
    /// The identity of a stored pool.
    pub fn of(pool: &ElasticNodePool) -> Result<PoolRef, BuildError> {
        let name = pool
            .metadata
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = pool
            .namespace()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let uid = pool.uid().ok_or(BuildError::MissingMetadata("uid"))?;
        Ok(PoolRef {
            name,
            namespace,
            uid,
        })
    }

    /// The controller owner reference every child carries, so that deleting the pool deletes
    /// its children.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: format!("{API_GROUP}/{API_VERSION}"),
            kind: "ElasticNodePool".to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn child_metadata(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(names::child_labels(&self.name, component)),
            owner_references: Some(vec![self.owner_reference()]),
            ..ObjectMeta::default()
        }
    }
}

/// Settings of the operator's installation that shape the children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildSettings {
    /// Guarder image used when the pool names none.
    pub guarder_image: String,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            guarder_image: format!("ghcr.io/elastic-yarn/guarder:{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The Secret with the bearer token the operator sends to the pool's guarders. The token is
/// made once by the caller and kept; building is pure.
pub fn guarder_token_secret(pool: &PoolRef, token: &str) -> Secret {
    Secret {
        metadata: pool.child_metadata(names::guarder_token_secret_name(&pool.name), "guarder"),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            GUARDER_TOKEN_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests;
