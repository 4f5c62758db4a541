//! The chart's RBAC against what the controllers really did, from the API server's audit log:
//! no request refused, and no verb granted that no scenario used (each exception says why).

use std::collections::BTreeSet;
use std::sync::Arc;

use elastic_yarn_e2e::audit::{Permission, events_of, service_account_user, used};
use elastic_yarn_e2e::chart::{RELEASE_NAMESPACE, granted};
use elastic_yarn_e2e::runner::every_scenario_runs;
use elastic_yarn_e2e::world::World;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::Api;

/// Grants no scenario here can use, with the reason each stays in the chart.
fn kept_unused(account: &str) -> Vec<(Permission, &'static str)> {
    let p = |group: &str, resource: &str, verb: &str| {
        (group.to_owned(), resource.to_owned(), verb.to_owned())
    };
    match account {
        "elastic-yarn-operator" => vec![
            (
                p("elasticyarn.io", "elasticnodepools/finalizers", "update"),
                "checked by the OwnerReferencesPermissionEnforcement admission plugin when the operator sets blockOwnerDeletion on its children, not a request of its own",
            ),
            (
                p("data.fluid.io", "datasets", "get"),
                "Fluid is not served by any registry here; the controller scenarios pin these calls",
            ),
            (
                p("data.fluid.io", "alluxioruntimes/scale", "get"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "alluxioruntimes/scale", "patch"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "jindoruntimes/scale", "get"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "jindoruntimes/scale", "patch"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "juicefsruntimes/scale", "get"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "juicefsruntimes/scale", "patch"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "goosefsruntimes/scale", "get"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "goosefsruntimes/scale", "patch"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "efcruntimes/scale", "get"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "efcruntimes/scale", "patch"),
                "Fluid (as above)",
            ),
            (
                p("data.fluid.io", "dataloads", "create"),
                "Fluid (as above)",
            ),
        ],
        "elastic-yarn-staticip" => vec![
            (
                p("elasticyarn.io", "staticippools/finalizers", "update"),
                "checked by the OwnerReferencesPermissionEnforcement admission plugin (StaticIPs are owned by their pool), not a request of its own",
            ),
            (
                p("elasticyarn.io", "staticips/finalizers", "update"),
                "checked by the OwnerReferencesPermissionEnforcement admission plugin (keytab Secrets are owned by their StaticIP), not a request of its own",
            ),
        ],
        _ => Vec::new(),
    }
}

async fn rules_of(world: &World, account: &str) -> BTreeSet<Permission> {
    let cluster_role = Api::<ClusterRole>::all(world.client.clone())
        .get(account)
        .await
        .expect("the chart's ClusterRole");
    let role = Api::<Role>::namespaced(world.client.clone(), RELEASE_NAMESPACE)
        .get(&format!("{account}-leader"))
        .await
        .expect("the chart's leader Role");
    let mut all = granted(cluster_role.rules.as_deref().unwrap_or_default());
    all.extend(granted(role.rules.as_deref().unwrap_or_default()));
    all
}

pub async fn controllers_use_exactly_what_the_chart_grants(world: Arc<World>) {
    let Some(log) = world.cluster.audit_log() else {
        println!(
            "controllers_use_exactly_what_the_chart_grants: needs the local control plane's audit log; not checked on this cluster"
        );
        return;
    };
    let mut problems = Vec::new();
    for account in ["elastic-yarn-operator", "elastic-yarn-staticip"] {
        let events = events_of(log, &service_account_user(RELEASE_NAMESPACE, account));
        if events.is_empty() && !every_scenario_runs() {
            println!("{account}: made no request in this partial run");
            continue;
        }
        assert!(
            !events.is_empty(),
            "{account} made no request: did its scenarios run?"
        );
        for event in events.iter().filter(|e| e.forbidden()) {
            problems.push(format!(
                "{account}: refused {} {} ({:?})",
                event.verb,
                event.request_uri,
                event.permission()
            ));
        }
        let mut used = used(&events);
        // A server-side apply that creates the object needs `create` as well as `patch`.
        for event in &events {
            if event.verb == "patch"
                && event
                    .response_status
                    .as_ref()
                    .is_some_and(|s| s.code == 201)
                && let Some((group, resource, _)) = event.permission()
            {
                used.insert((group, resource, "create".to_owned()));
            }
        }
        let granted = rules_of(&world, account).await;
        let kept = kept_unused(account);
        for (permission, why) in &kept {
            if !granted.contains(permission) && every_scenario_runs() {
                problems.push(format!("{account}: the exception {permission:?} ({why}) is not granted any more: drop it"));
            }
            if used.contains(permission) && every_scenario_runs() {
                problems.push(format!(
                    "{account}: {permission:?} is used after all: drop its exception"
                ));
            }
        }
        let kept: BTreeSet<&Permission> = kept.iter().map(|(p, _)| p).collect();
        let unused: Vec<&Permission> = granted
            .iter()
            .filter(|p| !used.contains(*p) && !kept.contains(p))
            .collect();
        if every_scenario_runs() {
            for permission in unused {
                problems.push(format!("{account}: granted but never used: {permission:?}"));
            }
        } else {
            println!(
                "{account}: {} grants unused by this partial run (checked on a full run)",
                unused.len()
            );
        }
        println!(
            "{account}: {} requests, {} permissions used of {} granted",
            events.len(),
            used.len(),
            granted.len()
        );
    }
    assert!(
        problems.is_empty(),
        "RBAC of the chart vs what the controllers did:\n{}",
        problems.join("\n")
    );
}
