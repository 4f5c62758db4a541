//! Two operator replicas: one acts; when it dies or freezes, the other takes over once the
//! Lease expires, and the API server's audit log shows their writes never overlap.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::audit::{AuditEvent, events_of, service_account_user};
use elastic_yarn_e2e::chart::RELEASE_NAMESPACE;
use elastic_yarn_e2e::fault_proxy::FaultProxy;
use elastic_yarn_e2e::pools::{
    self, hadoop_conf, manifest, node_manager_pods, node_of, register, resident, running,
    wait_for_running,
};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::watch_proxy::WatchProxy;
use elastic_yarn_e2e::world::World;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use yarn_rm::Resources;

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

/// A Resident pool `name` in namespace `e2e-<name>` with its NM Running on one new node
/// `e2e-<name>-1`; the namespace and the node.
async fn pool_on_one_node(world: &World, name: &str) -> (String, String) {
    let ns = world.namespace(&format!("e2e-{name}")).await;
    hadoop_conf(&world.client, &ns).await;
    let node = format!("e2e-{name}-1");
    world.nodes(&[&node], &[("e2e/pool", name)]).await;
    pools::create(&world.client, &manifest(world, &ns, name, name, resident())).await;
    wait_for_running(world, &ns, name, &[&node]).await;
    (ns, node)
}

/// The local control plane's audit log, or `None` (said) on a cluster given by `KUBECONFIG`.
fn audit_log_for(world: &World, scenario: &str) -> Option<&'static std::path::Path> {
    let log = world.cluster.audit_log();
    if log.is_none() {
        println!(
            "{scenario}: needs the local control plane's audit log; not checked on this cluster"
        );
    }
    log
}

/// When the replica with `next_credential` first wrote, and the writes of the replica with
/// `old_credential` received from that moment on (or from `since`, when earlier), as lines.
fn writes_after_takeover(
    log: &std::path::Path,
    old_credential: &str,
    next_credential: &str,
    since: Option<Timestamp>,
) -> (Timestamp, Vec<String>) {
    let events = events_of(
        log,
        &service_account_user(RELEASE_NAMESPACE, "elastic-yarn-operator"),
    );
    let first_of_next = acting_writes(&events, next_credential)
        .map(|e| e.request_received_timestamp)
        .min()
        .expect("the next leader wrote");
    let from = since.map_or(first_of_next, |since| since.min(first_of_next));
    let late = acting_writes(&events, old_credential)
        .filter(|e| e.request_received_timestamp >= from)
        .map(|e| {
            format!(
                "{} {} {}",
                e.request_received_timestamp, e.verb, e.request_uri
            )
        })
        .collect();
    (first_of_next, late)
}

/// Sends `signal` to the `leader` replica; returns its credential and `next`'s.
async fn signal_leader(world: &World, leader: &str, next: &str, signal: &str) -> (String, String) {
    let mut operators = world.operators.lock().await;
    let next_credential = operators
        .iter()
        .find(|o| o.identity == next)
        .map(|o| o.credential.clone())
        .expect("the next replica");
    let process = operators
        .iter_mut()
        .find(|o| o.identity == leader)
        .expect("the leader's process");
    process.process.signal(signal);
    (process.credential.clone(), next_credential)
}

/// Waits for `next` to hold the Lease, then deletes the pool's NM pod on `node` and waits for
/// the new leader to recreate it: proof that it acts.
async fn next_leader_acts(world: &World, next: &str, ns: &str, pool: &str, node: &str) {
    wait_for(
        "the next replica to take the Lease",
        Duration::from_secs(90),
        || async { (holder(world).await.as_deref() == Some(next)).then_some(()) },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), ns);
    let victim = node_manager_pods(&world.client, ns, pool)
        .await
        .into_iter()
        .find(|p| node_of(p) == node)
        .expect("an NM pod");
    pods.delete(&victim.name_any(), &DeleteParams::default())
        .await
        .expect("pod deleted");
    wait_for(
        "the new leader to recreate the NM pod",
        Duration::from_secs(90),
        || async {
            node_manager_pods(&world.client, ns, pool)
                .await
                .into_iter()
                .find(|p| node_of(p) == node && running(p) && p.uid() != victim.uid())
        },
    )
    .await;
}

pub async fn one_leader_acts_at_a_time(world: Arc<World>) {
    let Some(log) = audit_log_for(&world, "one_leader_acts_at_a_time") else {
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

    let (first_credential, second_credential) = signal_leader(&world, &first, second, "KILL").await;
    let killed_at = Timestamp::now();
    next_leader_acts(&world, second, &ns, "handover", nodes[0]).await;

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

/// The leader is frozen (SIGSTOP) past its Lease; another takes over and acts; the frozen one
/// wakes (SIGCONT) and, its leadership stale, writes nothing before it steps down.
pub async fn a_frozen_leader_wakes_up_and_does_nothing(world: Arc<World>) {
    let Some(log) = audit_log_for(&world, "a_frozen_leader_wakes_up_and_does_nothing") else {
        return;
    };
    world.operator().await;
    let frozen = holder(&world).await.expect("a leader");
    let next = "operator-c";
    world.start_operator(next).await;
    let (ns, node) = pool_on_one_node(&world, "frozen").await;
    let nodes = [node.as_str()];

    let (frozen_credential, next_credential) = signal_leader(&world, &frozen, next, "STOP").await;
    let frozen_at = Timestamp::now();
    next_leader_acts(&world, next, &ns, "frozen", nodes[0]).await;

    // The frozen one wakes up, with every watch and timer due at once.
    let woke_at = Timestamp::now();
    {
        let mut operators = world.operators.lock().await;
        let leader = operators
            .iter_mut()
            .find(|o| o.identity == frozen)
            .expect("the frozen process");
        leader.process.signal("CONT");
    }
    wait_for(
        "the woken replica to step down and exit",
        Duration::from_secs(60),
        || async {
            let mut operators = world.operators.lock().await;
            let leader = operators.iter_mut().find(|o| o.identity == frozen)?;
            (!leader.process.running()).then_some(())
        },
    )
    .await;

    // A request in flight when the process froze may still land; nothing may land once the
    // other replica acts, or after the frozen one wakes.
    let (first_of_next, after_waking) =
        writes_after_takeover(log, &frozen_credential, &next_credential, Some(woke_at));
    println!(
        "frozen leader: {frozen} frozen at {frozen_at}, {next} first wrote at {first_of_next}, {frozen} woke at {woke_at} and wrote {} times after that",
        after_waking.len()
    );
    assert!(
        after_waking.is_empty(),
        "the frozen replica wrote after it lost the Lease: {after_waking:?}"
    );
}

/// A drain outlives the leader that started it: the NM is at zero on the RM and its pod marked
/// with the drain deadline; the leader is killed; the next leader finishes the drain from what
/// the API server and the RM hold (the pod goes at the deadline), and never gives the draining
/// NM capacity back.
pub async fn a_drain_survives_the_death_of_the_leader(world: Arc<World>) {
    world.operator().await;
    let leader = holder(&world).await.expect("a leader");
    let next = "operator-d";
    world.start_operator(next).await;
    let ns = world.namespace("e2e-middrain").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-middrain-1"];
    world.nodes(&nodes, &[("e2e/pool", "middrain")]).await;
    let mut pool = manifest(&world, &ns, "middrain", "middrain", resident());
    // Long enough that the drain is still under way when the leader dies.
    pool["spec"]["guarder"]["gracePeriodSeconds"] = serde_json::json!(40);
    pools::create(&world.client, &pool).await;
    let pods = wait_for_running(&world, &ns, "middrain", &nodes).await;
    let id = register(
        &world,
        &pods,
        Resources {
            memory_mb: 32_768,
            vcores: 8,
        },
    )
    .pop()
    .expect("a node id");
    // Containers run: the drain cannot end early because the NM is empty.
    world.rm.cluster().set_used(
        &id,
        Resources {
            memory_mb: 4096,
            vcores: 2,
        },
        2,
    );

    let pod_name = pods[0].name_any();
    pools::drain_by_ineligibility(&world.client, &ns, nodes[0], &pod_name).await;
    let pod_api: Api<Pod> = Api::namespaced(world.client.clone(), &ns);
    assert_eq!(
        world
            .rm
            .cluster()
            .node(&id)
            .expect("the NM")
            .capacity
            .vcores,
        0
    );
    signal_leader(&world, &leader, next, "KILL").await;
    let writes_before = world.rm.writes().len();

    wait_for(
        "the next leader to remove the drained NM's pod",
        Duration::from_secs(120),
        || async {
            pod_api
                .get_opt(&pod_name)
                .await
                .ok()
                .and_then(|pod| pod.is_none().then_some(()))
        },
    )
    .await;
    assert_eq!(holder(&world).await.as_deref(), Some(next));
    let regrown: Vec<String> = world.rm.writes()[writes_before..]
        .iter()
        .filter(|w| w.path.contains(&format!("/nodes/{id}/resource")))
        .filter(|w| !w.body.contains("\"vCores\":0"))
        .map(|w| w.body.clone())
        .collect();
    assert!(
        regrown.is_empty(),
        "the draining NM got capacity back: {regrown:?}"
    );
    assert!(
        node_manager_pods(&world.client, &ns, "middrain")
            .await
            .is_empty(),
        "no new NM on the ineligible node"
    );
}

/// The API server stops answering the leader: every byte between them is held by a proxy and
/// no connection closes, so each of its requests hangs (its reconciles too). It steps down at
/// its renew deadline and exits at once, without waiting for the reconciles stuck on the hung
/// connections; the next replica takes over and acts. The held connections are then cut, as a
/// partition drops its packets: the cut-off replica wrote nothing once the next one acted.
pub async fn a_leader_cut_off_from_the_api_server_steps_down_at_once(world: Arc<World>) {
    let Some(log) = audit_log_for(
        &world,
        "a_leader_cut_off_from_the_api_server_steps_down_at_once",
    ) else {
        return;
    };
    world.operator().await;
    let upstream: std::net::SocketAddr = world
        .cluster
        .server
        .trim_start_matches("https://")
        .parse()
        .expect("the API server's address");
    let proxy = FaultProxy::start(upstream).await;
    let cut = "operator-e";
    lead_through(&world, cut, format!("https://{}", proxy.address)).await;
    let (ns, node) = pool_on_one_node(&world, "cutoff").await;

    let next = "operator-f";
    world.start_operator(next).await;
    proxy.hang(true);
    let hung_at = std::time::Instant::now();
    let exited_after = wait_for(
        "the cut-off leader to step down and exit",
        Duration::from_secs(45),
        || async {
            let mut operators = world.operators.lock().await;
            let process = operators.iter_mut().find(|o| o.identity == cut)?;
            (!process.process.running()).then(|| hung_at.elapsed())
        },
    )
    .await;
    next_leader_acts(&world, next, &ns, "cutoff", &node).await;
    proxy.cut();

    let (cut_credential, next_credential) = {
        let operators = world.operators.lock().await;
        let credential = |identity: &str| {
            operators
                .iter()
                .find(|o| o.identity == identity)
                .map(|o| o.credential.clone())
                .expect("the replica")
        };
        (credential(cut), credential(next))
    };
    let (first_of_next, late) = writes_after_takeover(log, &cut_credential, &next_credential, None);
    println!(
        "cut-off leader: exited {exited_after:.1?} after the API server stopped answering it; {next} first wrote at {first_of_next}"
    );
    assert!(
        late.is_empty(),
        "the cut-off replica wrote once the next one acted: {late:?}"
    );
}

/// Starts replica `identity` reaching the API server at `server` (a proxy in front of it) and
/// kills every other replica, so that it leads.
async fn lead_through(world: &World, identity: &str, server: String) {
    world.start_operator_through(identity, server).await;
    for operator in world.operators.lock().await.iter_mut() {
        if operator.identity != identity {
            operator.process.signal("KILL");
        }
    }
    wait_for(
        "the replica behind the proxy to lead",
        Duration::from_secs(90),
        || async { (holder(world).await.as_deref() == Some(identity)).then_some(()) },
    )
    .await;
}

/// The API server expires the leader's watches, as after a long disconnection or an etcd
/// compaction: every watch stream ends and the next watch of each resource gets `410 Expired`.
/// The operator lists again and goes on acting: it recreates a deleted NM pod (the pod watch)
/// and runs a pool made afterwards (the pool and node watches).
pub async fn expired_watches_are_listed_again(world: Arc<World>) {
    let Some(control_plane) = world.cluster.local.as_ref() else {
        println!(
            "expired_watches_are_listed_again: needs the local control plane's certificate; not checked on this cluster"
        );
        return;
    };
    world.operator().await;
    let proxy = WatchProxy::start(
        &world.cluster.server,
        control_plane.dir(),
        &world.cluster.ca_pem,
    )
    .await;
    let identity = "operator-g";
    lead_through(&world, identity, format!("https://{}", proxy.address)).await;
    let (ns, node) = pool_on_one_node(&world, "expired").await;

    proxy.expire_watches();
    let expired = wait_for(
        "the pool, pod and node watches to get 410 Expired",
        Duration::from_secs(60),
        || async {
            let paths = proxy.expired_paths();
            ["elasticnodepools", "/pods", "/nodes"]
                .iter()
                .all(|kind| paths.iter().any(|p| p.ends_with(kind)))
                .then_some(paths)
        },
    )
    .await;
    proxy.stop_expiring();
    next_leader_acts(&world, identity, &ns, "expired", &node).await;
    pool_on_one_node(&world, "expired-after").await;
    assert_eq!(holder(&world).await.as_deref(), Some(identity));
    println!(
        "expired watches: {} answered 410 ({expired:?}); the operator listed again and acted",
        proxy.expired()
    );
}
