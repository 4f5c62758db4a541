//! NM pods under Pod Security admission (the API server's own PodSecurity plugin): in a
//! namespace enforcing `baseline`, a pool whose guarder runs as the NM's user (`guarder.runAs`,
//! no capability) gets its NM pod; a pool whose guarder needs `SYS_PTRACE` is refused by the
//! admission, and says so on its NM's status row and in an Event, without stopping the other.

use std::sync::Arc;

use elastic_yarn_e2e::pools::{
    self, event_notes, hadoop_conf, manifest, resident, wait_for_running, wait_for_status,
};
use elastic_yarn_e2e::world::World;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

pub async fn a_guarder_running_as_the_nodemanager_user_passes_pod_security_baseline(
    world: Arc<World>,
) {
    world.operator().await;
    let ns = world.namespace("e2e-baseline").await;
    Api::<Namespace>::all(world.client.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "baseline",
            }}})),
        )
        .await
        .expect("the namespace enforces baseline");
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-baseline-1", "e2e-baseline-2"];
    world
        .nodes(&nodes[..1], &[("e2e/pool", "baseline-as-user")])
        .await;
    world
        .nodes(&nodes[1..], &[("e2e/pool", "baseline-ptrace")])
        .await;

    let mut as_user = manifest(&world, &ns, "as-user", "baseline-as-user", resident());
    as_user["spec"]["guarder"]["runAs"] = json!({"user": 1000, "group": 1000});
    pools::create(&world.client, &as_user).await;
    let ptrace = manifest(&world, &ns, "ptrace", "baseline-ptrace", resident());
    pools::create(&world.client, &ptrace).await;

    let pods = wait_for_running(&world, &ns, "as-user", &nodes[..1]).await;
    let context = pods[0]
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .expect("a pod security context");
    assert_eq!(context.run_as_user, Some(1000));
    assert_eq!(context.run_as_non_root, Some(true));

    let refused = wait_for_status(&world, &ns, "ptrace", "the refused NM on its row", |s| {
        s.node_managers.iter().any(|row| {
            row.problem
                .as_ref()
                .is_some_and(|p| p.message.contains("PodSecurity"))
        })
    })
    .await;
    let notes = event_notes(&world.client, &ns, "ptrace").await;
    println!(
        "baseline: as-user NM Running; ptrace pool row: {:?}; events: {:?}",
        refused
            .node_managers
            .first()
            .and_then(|r| r.problem.clone()),
        notes.iter().map(|(reason, _)| reason).collect::<Vec<_>>()
    );
    assert!(
        notes.iter().any(|(_, note)| note.contains("PodSecurity")),
        "an Event says why: {notes:?}"
    );
    assert!(
        pools::node_manager_pods(&world.client, &ns, "ptrace")
            .await
            .is_empty(),
        "the admission let no capable pod in"
    );
}
