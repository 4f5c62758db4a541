//! The permissions the operator uses, asked of the API server one by one (access reviews), so a
//! missing verb shows before the first reconcile trips on it.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

use super::Finding;

/// One permission: group, resource (with `/subresource`), verb, and whether it is namespaced to
/// the operator's own namespace (the Lease) rather than cluster-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource, `resource/subresource` for a subresource.
    pub resource: &'static str,
    /// Verb.
    pub verb: &'static str,
    /// Only in the operator's namespace.
    pub own_namespace: bool,
    /// Needed only by pools that use Fluid datasets.
    pub fluid: bool,
}

const fn cluster(group: &'static str, resource: &'static str, verb: &'static str) -> Permission {
    Permission {
        group,
        resource,
        verb,
        own_namespace: false,
        fluid: false,
    }
}

const fn fluid(resource: &'static str, verb: &'static str) -> Permission {
    Permission {
        group: "data.fluid.io",
        resource,
        verb,
        own_namespace: false,
        fluid: true,
    }
}

const fn lease(verb: &'static str) -> Permission {
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        verb,
        own_namespace: true,
        fluid: false,
    }
}

/// What the operator does with the API, as the chart grants it (the Kubernetes suite audits that
/// the operator uses exactly the chart's grants; the chain suite that this list passes there).
pub const OPERATOR_PERMISSIONS: &[Permission] = &[
    cluster("elasticyarn.io", "elasticnodepools", "list"),
    cluster("elasticyarn.io", "elasticnodepools", "watch"),
    cluster("elasticyarn.io", "elasticnodepools", "patch"),
    cluster("elasticyarn.io", "elasticnodepools/status", "patch"),
    cluster("elasticyarn.io", "elasticnodepools/finalizers", "update"),
    cluster("", "pods", "list"),
    cluster("", "pods", "watch"),
    cluster("", "pods", "create"),
    cluster("", "pods", "patch"),
    cluster("", "pods", "delete"),
    cluster("", "secrets", "get"),
    cluster("", "secrets", "create"),
    cluster("", "secrets", "patch"),
    cluster("", "configmaps", "create"),
    cluster("", "configmaps", "patch"),
    cluster("", "nodes", "get"),
    cluster("", "nodes", "list"),
    cluster("", "nodes", "watch"),
    cluster("", "nodes", "patch"),
    cluster("events.k8s.io", "events", "create"),
    cluster("events.k8s.io", "events", "patch"),
    cluster("elasticyarn.io", "staticippools", "get"),
    cluster("elasticyarn.io", "staticips", "list"),
    cluster("elasticyarn.io", "staticips/status", "update"),
    fluid("datasets", "get"),
    fluid("alluxioruntimes/scale", "get"),
    fluid("alluxioruntimes/scale", "patch"),
    fluid("dataloads", "create"),
    lease("get"),
    lease("create"),
    lease("update"),
];

impl Permission {
    fn attributes(&self, namespace: &str) -> ResourceAttributes {
        let (resource, subresource) = match self.resource.split_once('/') {
            Some((resource, sub)) => (resource, Some(sub.to_owned())),
            None => (self.resource, None),
        };
        ResourceAttributes {
            group: Some(self.group.to_owned()),
            resource: Some(resource.to_owned()),
            subresource,
            verb: Some(self.verb.to_owned()),
            namespace: self.own_namespace.then(|| namespace.to_owned()),
            ..ResourceAttributes::default()
        }
    }

    fn describe(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("{} {} ({group})", self.verb, self.resource)
    }
}

/// Who is asked about.
#[derive(Clone, Debug)]
pub enum Subject {
    /// The caller itself (the operator's account in `helm test`).
    Caller,
    /// A ServiceAccount, by namespace and name.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// Whether `subject` may do `permission`.
async fn allowed(
    client: &Client,
    subject: &Subject,
    permission: &Permission,
    namespace: &str,
) -> Result<bool, kube::Error> {
    let attributes = Some(permission.attributes(namespace));
    match subject {
        Subject::Caller => {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: attributes,
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
                .create(&PostParams::default(), &review)
                .await?;
            Ok(answer.status.is_some_and(|s| s.allowed))
        }
        Subject::ServiceAccount {
            namespace: account_namespace,
            name,
        } => {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    resource_attributes: attributes,
                    user: Some(format!("system:serviceaccount:{account_namespace}:{name}")),
                    groups: Some(vec![
                        "system:serviceaccounts".to_owned(),
                        format!("system:serviceaccounts:{account_namespace}"),
                        "system:authenticated".to_owned(),
                    ]),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let answer = Api::<SubjectAccessReview>::all(client.clone())
                .create(&PostParams::default(), &review)
                .await?;
            Ok(answer.status.is_some_and(|s| s.allowed))
        }
    }
}

/// The operator's permissions: a blocker for each core one missing, a warning for Fluid's.
pub async fn check(client: &Client, subject: &Subject, namespace: &str) -> (Finding, Finding) {
    let mut missing = Vec::new();
    let mut missing_fluid = Vec::new();
    for permission in OPERATOR_PERMISSIONS {
        match allowed(client, subject, permission, namespace).await {
            Ok(true) => {}
            Ok(false) if permission.fluid => missing_fluid.push(permission.describe()),
            Ok(false) => missing.push(permission.describe()),
            Err(error) => {
                let fix = match subject {
                    Subject::Caller => {
                        "run doctor with an account that may create \
                                        SelfSubjectAccessReviews (every authenticated user may)"
                    }
                    Subject::ServiceAccount { .. } => {
                        "run doctor as a user that may create SubjectAccessReviews, or without \
                         --service-account as the operator's account"
                    }
                }
                .to_owned();
                let finding = Finding::warn(format!("cannot review permissions: {error}"), fix);
                return (finding.clone(), finding);
            }
        }
    }
    let who = match subject {
        Subject::Caller => "this account".to_owned(),
        Subject::ServiceAccount { namespace, name } => format!("{namespace}/{name}"),
    };
    let core = if missing.is_empty() {
        Finding::pass(format!(
            "{who} holds the {} permissions the operator uses",
            OPERATOR_PERMISSIONS.iter().filter(|p| !p.fluid).count()
        ))
    } else {
        Finding::fail(
            format!("{who} may not: {}", missing.join(", ")),
            "install the chart's ClusterRole and Role (charts/elastic-yarn/templates/operator.yaml) \
             and bind them to the operator's ServiceAccount",
        )
    };
    let datasets = if missing_fluid.is_empty() {
        Finding::pass(format!("{who} may read and scale Fluid datasets"))
    } else {
        Finding::warn(
            format!("{who} may not: {}", missing_fluid.join(", ")),
            "pools that mount Fluid datasets need these verbs (the chart grants them)",
        )
    };
    (core, datasets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subresources_and_the_lease_namespace_reach_the_review() {
        let status = cluster("elasticyarn.io", "elasticnodepools/status", "patch");
        let attributes = status.attributes("elastic-yarn");
        assert_eq!(attributes.resource.as_deref(), Some("elasticnodepools"));
        assert_eq!(attributes.subresource.as_deref(), Some("status"));
        assert_eq!(attributes.namespace, None, "cluster-wide");
        let attributes = lease("update").attributes("elastic-yarn");
        assert_eq!(attributes.namespace.as_deref(), Some("elastic-yarn"));
        assert_eq!(attributes.subresource, None);
        assert_eq!(
            cluster("", "pods", "delete").describe(),
            "delete pods (core)"
        );
    }
}
