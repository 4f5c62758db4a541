//! Where claims are read and written: the Kubernetes API, or an in-process store with the same
//! optimistic concurrency (`memory`).

use std::future::Future;

use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::crd::{POOL_LABEL, StaticIP};

/// Why a read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object changed since it was read (HTTP 409).
    #[error("the StaticIP changed since it was read")]
    Conflict,
    /// The object is gone (HTTP 404).
    #[error("the StaticIP is gone")]
    NotFound,
    /// Anything else.
    #[error("Kubernetes API: {0}")]
    Api(String),
}

/// Reads a pool's addresses and replaces one address's status, guarded by its
/// `metadata.resourceVersion`.
pub trait AddressStore: Sync {
    /// Every `StaticIP` of `pool`.
    fn list(&self, pool: &str) -> impl Future<Output = Result<Vec<StaticIP>, StoreError>> + Send;
    /// Replaces the status of `address`; `Conflict` when its `resourceVersion` is not current.
    fn replace_status(
        &self,
        address: &StaticIP,
    ) -> impl Future<Output = Result<StaticIP, StoreError>> + Send;
}

/// The Kubernetes API.
#[derive(Clone)]
pub struct KubeStore {
    api: Api<StaticIP>,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeStore")
    }
}

impl KubeStore {
    /// Over a cluster-wide `StaticIP` API.
    pub fn new(client: kube::Client) -> Self {
        KubeStore {
            api: Api::all(client),
        }
    }
}

fn store_error(error: kube::Error) -> StoreError {
    match error {
        kube::Error::Api(status) if status.code == 409 => StoreError::Conflict,
        kube::Error::Api(status) if status.code == 404 => StoreError::NotFound,
        other => StoreError::Api(other.to_string()),
    }
}

impl AddressStore for KubeStore {
    async fn list(&self, pool: &str) -> Result<Vec<StaticIP>, StoreError> {
        let params = ListParams::default().labels(&format!("{POOL_LABEL}={pool}"));
        self.api
            .list(&params)
            .await
            .map(|list| list.items)
            .map_err(store_error)
    }

    async fn replace_status(&self, address: &StaticIP) -> Result<StaticIP, StoreError> {
        let name = address.metadata.name.as_deref().unwrap_or_default();
        self.api
            .replace_status(name, &PostParams::default(), address)
            .await
            .map_err(store_error)
    }
}
