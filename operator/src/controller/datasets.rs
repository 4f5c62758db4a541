//! Readiness of the Fluid Datasets a pool mounts: a `Dataset` (`data.fluid.io/v1alpha1`) is
//! usable once its `status.phase` is `Bound` (its runtime is up and the PVC of the same name
//! exists). A pool does not bring new NodeManagers online before every Dataset is bound: a job
//! scheduled there would read an empty mount.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

use crate::crd::DatasetMount;

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

#[cfg(test)]
mod tests {
    use super::*;

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
