//! Readiness of the Fluid Datasets a pool mounts: a `Dataset` (`data.fluid.io/v1alpha1`) is
//! usable once its `status.phase` is `Bound` (its runtime is up and the PVC of the same name
//! exists). A pool does not bring new NodeManagers online before every Dataset is bound: a job
//! scheduled there would read an empty mount. The cache runtime of a `Periodic` pool's dataset
//! follows its windows (`scale_caches`).

use jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::json;

use crate::build::PoolRef;
use crate::crd::{DatasetCacheSpec, DatasetMount, PoolPhase};

/// What the API says of one Dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetState {
    /// No such Dataset (or Fluid is not installed).
    Missing,
    /// It exists, in this phase (`None` before Fluid wrote any status).
    Phase(Option<String>),
}

/// The pool's datasets taken together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetsReadiness {
    /// The pool mounts none.
    NoDatasets,
    /// Every one is bound.
    Bound(usize),
    /// Some are missing or not bound: the reason and a message naming them.
    NotReady {
        /// `DatasetMissing` when one does not exist, else `DatasetNotBound`.
        reason: &'static str,
        /// Which, and in what phase.
        message: String,
    },
}

impl DatasetsReadiness {
    /// Whether new NodeManagers may start.
    pub fn allows_new_node_managers(&self) -> bool {
        !matches!(self, DatasetsReadiness::NotReady { .. })
    }
}

/// Readiness from the state of each dataset (pure).
pub fn readiness(states: &[(String, DatasetState)]) -> DatasetsReadiness {
    if states.is_empty() {
        return DatasetsReadiness::NoDatasets;
    }
    let missing: Vec<&str> = states
        .iter()
        .filter(|(_, s)| *s == DatasetState::Missing)
        .map(|(name, _)| name.as_str())
        .collect();
    let unbound: Vec<String> = states
        .iter()
        .filter_map(|(name, state)| match state {
            DatasetState::Phase(phase) if phase.as_deref() != Some("Bound") => Some(format!(
                "{name} ({})",
                phase.as_deref().unwrap_or("no status yet")
            )),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        DatasetsReadiness::NotReady {
            reason: "DatasetMissing",
            message: format!(
                "Fluid Dataset {} not found in the pool's namespace (is Fluid installed?); no \
                 NodeManager starts until every dataset is bound",
                missing.join(", ")
            ),
        }
    } else if !unbound.is_empty() {
        DatasetsReadiness::NotReady {
            reason: "DatasetNotBound",
            message: format!(
                "Fluid Dataset {} not Bound yet; no NodeManager starts until every dataset is \
                 bound",
                unbound.join(", ")
            ),
        }
    } else {
        DatasetsReadiness::Bound(states.len())
    }
}

fn dataset_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("data.fluid.io", "v1alpha1", "Dataset"),
        "datasets",
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Reads every dataset of the pool.
pub async fn read(
    client: &Client,
    namespace: &str,
    datasets: &[DatasetMount],
) -> Result<Vec<(String, DatasetState)>, kube::Error> {
    let api = dataset_api(client, namespace);
    let mut states = Vec::with_capacity(datasets.len());
    for dataset in datasets {
        let state = match api.get_opt(&dataset.name).await? {
            None => DatasetState::Missing,
            Some(object) => DatasetState::Phase(
                object
                    .data
                    .get("status")
                    .and_then(|s| s.get("phase"))
                    .and_then(|p| p.as_str())
                    .map(str::to_owned),
            ),
        };
        states.push((dataset.name.clone(), state));
    }
    Ok(states)
}

/// Cache workers a `Periodic` pool's dataset should have at `now` (pure): the configured
/// number from `warmUpSeconds` before the online window until the offline time, zero outside.
/// `None` leaves the runtime alone (other modes, or a pool in trouble).
pub fn cache_replicas(
    periodic: bool,
    phase: PoolPhase,
    next_transition: Option<Timestamp>,
    now: Timestamp,
    cache: &DatasetCacheSpec,
) -> Option<i32> {
    if !periodic {
        return None;
    }
    match phase {
        PoolPhase::Online | PoolPhase::Draining | PoolPhase::Pending => Some(cache.replicas),
        PoolPhase::Offline => {
            let lead = SignedDuration::from_secs(i64::from(cache.warm_up_seconds));
            let warming = next_transition.is_some_and(|opens| now.duration_until(opens) <= lead);
            Some(if warming { cache.replicas } else { 0 })
        }
        PoolPhase::Degraded => None,
    }
}

/// What scaling a cache did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheChange {
    /// The dataset.
    pub dataset: String,
    /// Workers before.
    pub from: i32,
    /// Workers after.
    pub to: i32,
    /// The DataLoad started, if any.
    pub data_load: Option<String>,
}

fn fluid_api(client: &Client, namespace: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("data.fluid.io", "v1alpha1", kind),
        plural,
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Scales each dataset's runtime (through its `scale` subresource) to what `cache_replicas`
/// says, starting a `DataLoad` on a scale-up when asked. A runtime that does not exist is
/// skipped (its Dataset is then not bound, which `DatasetsReady` reports).
pub async fn scale_caches(
    client: &Client,
    pool: &PoolRef,
    datasets: &[DatasetMount],
    desired: impl Fn(&DatasetCacheSpec) -> Option<i32>,
    now: Timestamp,
) -> Result<Vec<CacheChange>, kube::Error> {
    let mut changes = Vec::new();
    for dataset in datasets {
        let Some(cache) = &dataset.cache else {
            continue;
        };
        let Some(want) = desired(cache) else {
            continue;
        };
        let kind = format!("{:?}", cache.runtime);
        let runtimes = fluid_api(client, &pool.namespace, &kind, cache.runtime.plural());
        let scale = match runtimes.get_scale(&dataset.name).await {
            Ok(scale) => scale,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(error) => return Err(error),
        };
        let have = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
        if have == want {
            continue;
        }
        let patch = json!({"spec": {"replicas": want}});
        runtimes
            .patch_scale(
                &dataset.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        let data_load = if want > have && cache.data_load {
            Some(start_data_load(client, pool, &dataset.name, now).await?)
        } else {
            None
        };
        changes.push(CacheChange {
            dataset: dataset.name.clone(),
            from: have,
            to: want,
            data_load,
        });
    }
    Ok(changes)
}

/// Name of the warm-up `DataLoad` of `dataset` started at `now` (one per minute at most).
pub fn data_load_name(dataset: &str, now: Timestamp) -> String {
    format!("{dataset}-warm-up-{}", now.as_second() / 60)
}

async fn start_data_load(
    client: &Client,
    pool: &PoolRef,
    dataset: &str,
    now: Timestamp,
) -> Result<String, kube::Error> {
    let loads = fluid_api(client, &pool.namespace, "DataLoad", "dataloads");
    let name = data_load_name(dataset, now);
    let mut load: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "data.fluid.io/v1alpha1",
        "kind": "DataLoad",
        "metadata": {"name": name, "namespace": pool.namespace},
        "spec": {
            "dataset": {"name": dataset, "namespace": pool.namespace},
            "loadMetadata": true,
        },
    }))
    .map_err(kube::Error::SerdeError)?;
    load.metadata.owner_references = Some(vec![pool.owner_reference()]);
    match loads.create(&PostParams::default(), &load).await {
        Ok(_) => Ok(name),
        // Started already in this minute.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(name),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::FluidRuntimeKind;

    fn cache(warm_up_seconds: u32) -> DatasetCacheSpec {
        DatasetCacheSpec {
            runtime: FluidRuntimeKind::AlluxioRuntime,
            replicas: 3,
            warm_up_seconds,
            data_load: true,
        }
    }

    #[test]
    fn caches_warm_up_before_the_window_and_go_to_zero_after() {
        let now: Timestamp = "2026-11-24T21:50:00Z".parse().unwrap();
        let opens: Timestamp = "2026-11-24T22:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-11-24T23:00:00Z".parse().unwrap();
        let offline = PoolPhase::Offline;
        assert_eq!(
            cache_replicas(true, offline, Some(opens), now, &cache(600)),
            Some(3)
        );
        assert_eq!(
            cache_replicas(true, offline, Some(later), now, &cache(600)),
            Some(0)
        );
        assert_eq!(
            cache_replicas(true, offline, Some(opens), now, &cache(300)),
            Some(0)
        );
        assert_eq!(
            cache_replicas(true, PoolPhase::Online, None, now, &cache(0)),
            Some(3)
        );
        assert_eq!(
            cache_replicas(true, PoolPhase::Draining, None, now, &cache(0)),
            Some(3)
        );
        assert_eq!(
            cache_replicas(true, PoolPhase::Degraded, None, now, &cache(0)),
            None
        );
        assert_eq!(
            cache_replicas(false, offline, Some(opens), now, &cache(600)),
            None
        );
    }

    fn phase(name: &str, phase: Option<&str>) -> (String, DatasetState) {
        (
            name.to_owned(),
            DatasetState::Phase(phase.map(str::to_owned)),
        )
    }

    #[test]
    fn every_dataset_must_be_bound() {
        assert_eq!(readiness(&[]), DatasetsReadiness::NoDatasets);
        assert_eq!(
            readiness(&[phase("a", Some("Bound")), phase("b", Some("Bound"))]),
            DatasetsReadiness::Bound(2)
        );
        let waiting = readiness(&[
            phase("a", Some("Bound")),
            phase("b", Some("NotBound")),
            phase("c", None),
        ]);
        assert_eq!(
            waiting,
            DatasetsReadiness::NotReady {
                reason: "DatasetNotBound",
                message: "Fluid Dataset b (NotBound), c (no status yet) not Bound yet; no \
                          NodeManager starts until every dataset is bound"
                    .to_owned()
            }
        );
        assert!(!waiting.allows_new_node_managers());
    }

    #[test]
    fn a_missing_dataset_is_named_first() {
        let got = readiness(&[
            phase("a", Some("Failed")),
            ("tpcds-1t".to_owned(), DatasetState::Missing),
        ]);
        let DatasetsReadiness::NotReady { reason, message } = got else {
            panic!("not ready")
        };
        assert_eq!(reason, "DatasetMissing");
        assert!(message.contains("tpcds-1t not found"), "{message}");
    }
}
