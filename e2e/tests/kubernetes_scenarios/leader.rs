//! Two operator replicas: one acts; when it dies, the other takes over once the Lease expires,
//! and the API server's audit log shows their writes never overlap.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::audit::{AuditEvent, events_of, service_account_user};
use elastic_yarn_e2e::chart::RELEASE_NAMESPACE;
use elastic_yarn_e2e::pools::{
    self, hadoop_conf, manifest, node_manager_pods, node_of, resident, running, wait_for_running,
};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::world::World;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};

async fn holder(world: &World) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), RELEASE_NAMESPACE);
    leases
        .get_opt("elastic-yarn-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// Writes other than to the Lease, by the replica with `credential`.
fn acting_writes<'a>(
    events: &'a [AuditEvent],
    credential: &'a str,
) -> impl Iterator<Item = &'a AuditEvent> {
    events.iter().filter(move |e| {
        e.credential() == Some(credential)
            && e.is_write()
            && e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource != "leases")
    })
}

pub async fn one_leader_acts_at_a_time(world: Arc<World>) {
    let Some(log) = world.cluster.audit_log() else {
        println!(
            "one_leader_acts_at_a_time: needs the local control plane's audit log; not checked on this cluster"
        );
        return;
    };
    world.operator().await;
    let first = holder(&world).await.expect("a leader");
    let second = if first == "operator-b" {
        "operator-c"
    } else {
        "operator-b"
    };
    world.start_operator(second).await;

    let ns = world.namespace("e2e-leader").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-leader-1", "e2e-leader-2"];
    world.nodes(&nodes, &[("e2e/pool", "leader")]).await;
    pools::create(
        &world.client,
        &manifest(&world, &ns, "handover", "leader", resident()),
    )
    .await;
    wait_for_running(&world, &ns, "handover", &nodes).await;
    // Several of the follower's renewal periods pass while the leader acts.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        holder(&world).await.as_deref(),
        Some(first.as_str()),
        "the leader kept the Lease"
    );

    let (first_credential, second_credential) = {
        let mut operators = world.operators.lock().await;
        let second_credential = operators
            .iter()
            .find(|o| o.identity == second)
            .map(|o| o.credential.clone())
            .expect("the second replica");
        let leader = operators
            .iter_mut()
            .find(|o| o.identity == first)
            .expect("the leader's process");
        leader.process.signal("KILL");
        (leader.credential.clone(), second_credential)
    };
    let killed_at = Timestamp::now();
    wait_for(
        "the second replica to take the Lease",
        Duration::from_secs(90),
        || async { (holder(&world).await.as_deref() == Some(second)).then_some(()) },
    )
    .await;

    // The new leader acts: a deleted NM pod comes back.
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), &ns);
    let victim = node_manager_pods(&world.client, &ns, "handover")
        .await
        .into_iter()
        .find(|p| node_of(p) == nodes[0])
        .expect("an NM pod");
    pods.delete(&victim.name_any(), &DeleteParams::default())
        .await
        .expect("pod deleted");
    wait_for(
        "the new leader to recreate the NM pod",
        Duration::from_secs(90),
        || async {
            node_manager_pods(&world.client, &ns, "handover")
                .await
                .into_iter()
                .find(|p| node_of(p) == nodes[0] && running(p) && p.uid() != victim.uid())
        },
    )
    .await;

    let events = events_of(
        log,
        &service_account_user(RELEASE_NAMESPACE, "elastic-yarn-operator"),
    );
    let last_of_first = acting_writes(&events, &first_credential)
        .map(|e| e.request_received_timestamp)
        .max()
        .expect("the first leader wrote");
    let first_of_second = acting_writes(&events, &second_credential)
        .map(|e| e.request_received_timestamp)
        .min()
        .expect("the second leader wrote");
    println!(
        "leader handover: {first} last wrote at {last_of_first}, was killed at {killed_at}; {second} first wrote at {first_of_second}"
    );
    assert!(
        first_of_second > last_of_first,
        "two replicas acted at once: {second} wrote at {first_of_second}, before {first}'s last write at {last_of_first}"
    );
    assert!(
        first_of_second > killed_at,
        "{second} wrote while {first} still lived"
    );
}
