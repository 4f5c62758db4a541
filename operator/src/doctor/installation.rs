//! Checks of the installation as a whole: the CRDs, the operator's permissions, Koordinator.

use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use kube::{Api, Client, CustomResourceExt};
use serde_json::Value;

use super::rbac::{self, Subject};
use super::{DoctorArgs, Finding, Report};
use crate::build::names::BATCH_PRIORITY_CLASS;

const SCOPE: &str = "installation";

/// Koordinator's NodeSLO CRD, which koord-manager fills per node.
const NODE_SLO_CRD: &str = "nodeslos.slo.koordinator.sh";

/// Adds the installation's checks to `report`.
pub async fn check(client: &Client, args: &DoctorArgs, report: &mut Report) {
    report.add(SCOPE, "crds", crds(client).await);
    let subject = match args.service_account.as_deref().map(|s| s.split_once('/')) {
        Some(Some((namespace, name))) => Subject::ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
        Some(None) => {
            report.add(
                SCOPE,
                "rbac",
                Finding::fail(
                    "--service-account is not NAMESPACE/NAME",
                    "name the operator's account as elastic-yarn/elastic-yarn-operator",
                ),
            );
            Subject::Caller
        }
        None => Subject::Caller,
    };
    let (core, fluid) = rbac::check(client, &subject, &args.lease_namespace).await;
    report.add(SCOPE, "rbac", core);
    report.add(SCOPE, "rbacFluid", fluid);
    report.add(SCOPE, "koordinatorCrds", node_slo_crd(client).await);
    report.add(SCOPE, "batchPriorityClass", priority_class(client).await);
}

/// The CRDs this operator needs, installed, established and as this binary defines them.
async fn crds(client: &Client) -> Finding {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let wanted = [
        crate::crd::ElasticNodePool::crd(),
        staticip::crd::StaticIPPool::crd(),
        staticip::crd::StaticIP::crd(),
    ]
    .map(controlkit::crd::as_shipped);
    let mut missing = Vec::new();
    let mut differing = Vec::new();
    for crd in &wanted {
        let name = crd.metadata.name.clone().unwrap_or_default();
        match api.get_opt(&name).await {
            Ok(Some(installed)) => {
                let established = installed
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    });
                if !established {
                    differing.push(format!("{name} (not established)"));
                } else if !same_versions(crd, &installed) {
                    differing.push(format!("{name} (schema differs)"));
                }
            }
            Ok(None) => missing.push(name),
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Finding::warn(
                    format!("cannot read CustomResourceDefinitions: {}", status.message),
                    "run doctor as a user that may get customresourcedefinitions to compare them",
                );
            }
            Err(error) => {
                return Finding::fail(
                    format!("cannot read CustomResourceDefinitions: {error}"),
                    "check the API server and the kubeconfig",
                );
            }
        }
    }
    if !missing.is_empty() {
        return Finding::fail(
            format!("not installed: {}", missing.join(", ")),
            "install the chart (its crds/ folder) or kubectl apply -f charts/elastic-yarn/crds/",
        );
    }
    if !differing.is_empty() {
        return Finding::fail(
            format!(
                "installed, but not established or not as this operator defines them: {}",
                differing.join(", ")
            ),
            "apply this release's CRDs: kubectl apply --server-side -f charts/elastic-yarn/crds/ \
             (Helm does not upgrade CRDs; see docs/install.md)",
        );
    }
    Finding::pass(format!(
        "{} CRDs installed and as this operator defines them",
        wanted.len()
    ))
}

/// Whether `installed` serves every version of `wanted` with the same schema (numbers compared
/// by value: the API server gives `30` back for a generated `30.0`).
fn same_versions(wanted: &CustomResourceDefinition, installed: &CustomResourceDefinition) -> bool {
    let schema = |version: &CustomResourceDefinitionVersion| {
        serde_json::to_value(&version.schema).unwrap_or(Value::Null)
    };
    wanted.spec.versions.iter().all(|version| {
        let wanted_schema = schema(version);
        installed
            .spec
            .versions
            .iter()
            .any(|v| v.name == version.name && v.served && same_json(&schema(v), &wanted_schema))
    })
}

/// JSON equality with numbers compared by value.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

async fn node_slo_crd(client: &Client) -> Finding {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    match api.get_opt(NODE_SLO_CRD).await {
        Ok(Some(_)) => Finding::pass(format!("Koordinator's {NODE_SLO_CRD} is installed")),
        Ok(None) => Finding::fail(
            format!("no {NODE_SLO_CRD}: Koordinator is not installed"),
            "install Koordinator (koord-manager and koordlet) with co-location enabled; \
             NodeManagers run on its batch resources",
        ),
        Err(error) => Finding::warn(
            format!("cannot read {NODE_SLO_CRD}: {error}"),
            "run doctor as a user that may get customresourcedefinitions",
        ),
    }
}

async fn priority_class(client: &Client) -> Finding {
    let api: Api<PriorityClass> = Api::all(client.clone());
    match api.get_opt(BATCH_PRIORITY_CLASS).await {
        Ok(Some(class)) => Finding::pass(format!(
            "PriorityClass {BATCH_PRIORITY_CLASS} exists (value {})",
            class.value
        )),
        Ok(None) => Finding::fail(
            format!("no PriorityClass {BATCH_PRIORITY_CLASS}: every NodeManager pod names it"),
            "install Koordinator, which creates it (koord-batch, value 5000-5999)",
        ),
        Err(error) => Finding::warn(
            format!("cannot read PriorityClass {BATCH_PRIORITY_CLASS}: {error}"),
            "run doctor as a user that may get priorityclasses",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_crds_are_what_doctor_expects() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/elastic-yarn/crds");
        for generated in [
            crate::crd::ElasticNodePool::crd(),
            staticip::crd::StaticIPPool::crd(),
            staticip::crd::StaticIP::crd(),
        ] {
            let name = generated.metadata.name.clone().expect("a name");
            let text =
                std::fs::read_to_string(dir.join(format!("{name}.yaml"))).expect("the chart's CRD");
            let shipped: CustomResourceDefinition = serde_yaml::from_str(&text).expect("a CRD");
            assert!(
                same_versions(&controlkit::crd::as_shipped(generated), &shipped),
                "{name}"
            );
        }
    }

    #[test]
    fn a_schema_read_back_with_whole_numbers_is_the_same() {
        let generated = controlkit::crd::as_shipped(crate::crd::ElasticNodePool::crd());
        let mut read_back = serde_json::to_value(&generated).expect("json");
        let text = read_back
            .to_string()
            .replace(".0,", ",")
            .replace(".0}", "}");
        read_back = serde_json::from_str(&text).expect("json");
        let read_back: CustomResourceDefinition = serde_json::from_value(read_back).expect("a CRD");
        assert!(same_versions(&generated, &read_back));
        let mut other = read_back.clone();
        if let Some(schema) = other.spec.versions[0]
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.description = Some("changed".to_owned());
        }
        assert!(!same_versions(&generated, &other));
    }
}
