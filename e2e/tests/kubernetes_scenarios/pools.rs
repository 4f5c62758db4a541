//! Pools reconciled by the real operator process under the chart's RBAC, on kwok nodes.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::pools::{
    self, RPC_PORT, condition, event_reasons, hadoop_conf, manifest, node_manager_pods, node_of,
    periodic_online_now, register, resident, running, wait_for_running, wait_for_status,
};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::world::{World, run};
use elastic_yarn_operator::build::names::FIELD_MANAGER;
use elastic_yarn_operator::crd::{NodeManagerState, PoolPhase};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use yarn_rm::{NodeId, Resources};

const NM_CAPACITY: Resources = Resources {
    memory_mb: 32_768,
    vcores: 8,
};

/// What the operator must have written into every NM pod it runs.
fn assert_owned_and_applied(pod: &Pod, pool: &str) {
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.kind == "ElasticNodePool")
        .unwrap_or_else(|| panic!("{} has no pool owner", pod.name_any()));
    assert_eq!(owner.name, pool);
    assert_eq!(owner.controller, Some(true), "the pool is the controller");
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.share_process_namespace),
        Some(true),
        "{}: the guarder must see the NM's processes",
        pod.name_any()
    );
    // Admission kept what the operator asked: no API token for YARN containers to read.
    let spec = pod.spec.as_ref().expect("a pod spec");
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert!(
        spec.volumes
            .iter()
            .flatten()
            .all(|v| v.projected.is_none() && !v.name.starts_with("kube-api-access")),
        "{}: a service-account token volume",
        pod.name_any()
    );
    let applied = pod.metadata.managed_fields.iter().flatten().any(|f| {
        f.manager.as_deref() == Some(FIELD_MANAGER) && f.operation.as_deref() == Some("Apply")
    });
    assert!(
        applied,
        "{} was not server-side applied by {FIELD_MANAGER}",
        pod.name_any()
    );
}

async fn wait_labelled(world: &World, ids: &[NodeId], label: &str) {
    wait_for(
        "the RM to hold the pool's label on every NM",
        Duration::from_secs(60),
        || async {
            ids.iter()
                .all(|id| {
                    world
                        .rm
                        .cluster()
                        .node(id)
                        .is_some_and(|n| n.labels.iter().any(|l| l == label))
                })
                .then_some(())
        },
    )
    .await;
}

/// A Resident and a Periodic pool (its window open now) on three nodes: NM pods applied with
/// their owner, a shared process namespace; registered NMs labelled on the RM; status rows,
/// conditions and the `kubectl get enp` columns; Events.
pub async fn resident_and_periodic_pools_run_their_node_managers(world: Arc<World>) {
    let ns = world.namespace("e2e-pools").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-pools-1", "e2e-pools-2", "e2e-pools-3"];
    world.nodes(&nodes, &[("e2e/pool", "pools")]).await;
    world.operator().await;
    pools::create(
        &world.client,
        &manifest(&world, &ns, "resident", "pools", resident()),
    )
    .await;
    pools::create(
        &world.client,
        &manifest(&world, &ns, "periodic", "pools", periodic_online_now()),
    )
    .await;

    for pool in ["resident", "periodic"] {
        let pods = wait_for_running(&world, &ns, pool, &nodes).await;
        for pod in &pods {
            assert_owned_and_applied(pod, pool);
        }
        let ids = register(&world, &pods, NM_CAPACITY);
        wait_labelled(&world, &ids, "elastic").await;
        let status = wait_for_status(&world, &ns, pool, "three running NMs, Online", |s| {
            s.node_managers.len() == 3
                && s.node_managers
                    .iter()
                    .all(|r| r.state == NodeManagerState::Running)
                && s.phase == Some(PoolPhase::Online)
                && condition(s, "ResourceManagerReachable").as_deref() == Some("True")
        })
        .await;
        for row in &status.node_managers {
            let pod = pods
                .iter()
                .find(|p| node_of(p) == row.node)
                .expect("a pod per row");
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
            assert_eq!(row.ip, ip, "{pool}: row IP");
            assert_eq!(row.pod, pod.name_any());
            assert_eq!(
                row.yarn_node_id,
                ip.map(|ip| format!("{ip}:{RPC_PORT}")),
                "{pool}: the NM's YARN id"
            );
            assert_eq!(
                row.capacity.vcores, NM_CAPACITY.vcores,
                "{pool}: capacity from the RM"
            );
        }
        let totals = status.totals.expect("totals");
        assert_eq!(totals.node_managers, 3);
        assert_eq!(totals.capacity.vcores, 3 * NM_CAPACITY.vcores);
        assert!(
            condition(&status, "Ready").is_some(),
            "{pool}: a Ready condition: {:?}",
            status.conditions
        );
        let reasons = wait_for(
            &format!("{pool}: NodeManagerCreated Events"),
            Duration::from_secs(30),
            || {
                let client = world.client.clone();
                let ns = ns.clone();
                async move {
                    let reasons = event_reasons(&client, &ns, pool).await;
                    (reasons
                        .iter()
                        .filter(|r| *r == "NodeManagerCreated")
                        .count()
                        >= 1)
                        .then_some(reasons)
                }
            },
        )
        .await;
        assert!(
            reasons.iter().any(|r| r == "NodeManagerLabelled"),
            "{pool}: {reasons:?}"
        );
    }
    let periodic = pools::status(&world.client, &ns, "periodic")
        .await
        .expect("status");
    assert!(
        periodic.next_transition.is_some(),
        "a Periodic pool shows its next transition"
    );

    let mut get = world.cluster.kubectl();
    get.args(["get", "enp", "--namespace", &ns]);
    let table = run(get).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for column in [
        "NAME", "MODE", "POLICY", "PHASE", "NMS", "VCORES", "USED", "READY",
    ] {
        assert!(
            header.contains(&column),
            "`kubectl get enp` lacks {column}:\n{table}"
        );
    }
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let resident_row = row("resident");
    let column = |name: &str| header.iter().position(|c| *c == name).expect("a column");
    assert_eq!(resident_row[column("MODE")], "Resident");
    assert_eq!(resident_row[column("PHASE")], "Online");
    assert_eq!(resident_row[column("NMS")], "3");
    assert_eq!(
        resident_row[column("VCORES")],
        (3 * NM_CAPACITY.vcores).to_string()
    );
    assert_eq!(row("periodic")[column("MODE")], "Periodic");
}

/// One pool through the changes a cluster brings: a spec change the running pods refuse (drain,
/// then new pods), a node that stops being eligible (drained, removed), an evicted NM pod
/// (replaced) and a deleted node (its row and pod go).
pub async fn pool_follows_spec_and_node_changes(world: Arc<World>) {
    let ns = world.namespace("e2e-changes").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-changes-1", "e2e-changes-2", "e2e-changes-3"];
    world.nodes(&nodes, &[("e2e/pool", "changes")]).await;
    world.operator().await;
    pools::create(
        &world.client,
        &manifest(&world, &ns, "changes", "changes", resident()),
    )
    .await;
    let pods = wait_for_running(&world, &ns, "changes", &nodes).await;
    let old_ids = register(&world, &pods, NM_CAPACITY);

    // A new ConfigMap changes the pods' volumes, which a running pod refuses.
    let maps: Api<ConfigMap> = Api::namespaced(world.client.clone(), &ns);
    let map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "hadoop-conf-2"},
        "data": {"yarn-site.xml": "<configuration/>"},
    }))
    .expect("a ConfigMap");
    maps.create(&Default::default(), &map)
        .await
        .expect("ConfigMap created");
    pools::patch_spec(
        &world.client,
        &ns,
        "changes",
        json!({"nodeManager": {"configMap": "hadoop-conf-2"}}),
    )
    .await;
    let uses_new_config = |pod: &Pod| {
        pod.spec.as_ref().is_some_and(|s| {
            s.volumes.iter().flatten().any(|v| {
                v.config_map
                    .as_ref()
                    .is_some_and(|c| c.name == "hadoop-conf-2")
            })
        })
    };
    let renewed = wait_for(
        "NM pods recreated with the new ConfigMap",
        Duration::from_secs(120),
        || async {
            let pods = node_manager_pods(&world.client, &ns, "changes").await;
            (pods.len() == 3 && pods.iter().all(|p| running(p) && uses_new_config(p)))
                .then_some(pods)
        },
    )
    .await;
    for id in &old_ids {
        let drained = world.rm.writes().iter().any(|w| {
            w.path.contains(&format!("/nodes/{id}/resource")) && w.body.contains("\"vCores\":0")
        });
        assert!(
            drained,
            "{id} was not set to zero on the RM before its pod went"
        );
    }
    let reasons = event_reasons(&world.client, &ns, "changes").await;
    for reason in ["DrainStarted", "NodeManagerRemoved"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} Event: {reasons:?}"
        );
    }
    register(&world, &renewed, NM_CAPACITY);

    // A node that loses the pool's label: its NM is drained, then removed.
    pools::make_ineligible(&world.client, nodes[2]).await;
    wait_for_running(&world, &ns, "changes", &nodes[..2]).await;
    let node_api: Api<Node> = Api::all(world.client.clone());

    // An evicted NM pod (as Koordinator leaves it) is replaced by a new one.
    let pod_api: Api<Pod> = Api::namespaced(world.client.clone(), &ns);
    let evicted = node_manager_pods(&world.client, &ns, "changes")
        .await
        .into_iter()
        .find(|p| node_of(p) == nodes[1])
        .expect("the NM on node 2");
    pod_api
        .patch_status(
            &evicted.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Failed", "reason": "Evicted",
                "message": "The node was low on resource: memory."}})),
        )
        .await
        .expect("pod marked evicted");
    let old_uid = evicted.uid();
    wait_for(
        "the evicted NM pod replaced",
        Duration::from_secs(90),
        || async {
            let pods = node_manager_pods(&world.client, &ns, "changes").await;
            pods.into_iter()
                .find(|p| node_of(p) == nodes[1] && running(p) && p.uid() != old_uid)
        },
    )
    .await;

    // A deleted node: its row leaves the status, and its pod goes.
    node_api
        .delete(nodes[0], &DeleteParams::default())
        .await
        .expect("node deleted");
    wait_for_status(&world, &ns, "changes", "only node 2's row", |s| {
        s.node_managers.len() == 1 && s.node_managers[0].node == nodes[1]
    })
    .await;
    wait_for(
        "the deleted node's NM pod gone",
        Duration::from_secs(150),
        || async {
            let pods = node_manager_pods(&world.client, &ns, "changes").await;
            (!pods.iter().any(|p| node_of(p) == nodes[0])).then_some(())
        },
    )
    .await;
}

/// Many Node updates per sync interval (each one reconciles the pool) while a pool is resident:
/// its vertical loop still ticks at its own interval.
pub async fn vertical_loop_ticks_through_a_node_update_storm(world: Arc<World>) {
    let ns = world.namespace("e2e-storm").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-storm-1", "e2e-storm-2"];
    world.nodes(&nodes, &[("e2e/pool", "storm")]).await;
    world.operator().await;
    pools::create(
        &world.client,
        &manifest(&world, &ns, "storm", "storm", resident()),
    )
    .await;
    let pods = wait_for_running(&world, &ns, "storm", &nodes).await;
    register(&world, &pods, NM_CAPACITY);
    let pool_label = format!("pool=\"{ns}/storm\"");
    let ticks = || async {
        let operators = world.operators.lock().await;
        let mut total = 0.0;
        for operator in operators.iter() {
            total += operator
                .metric("elastic_yarn_operator_loop_ticks_total", &[&pool_label])
                .await
                .unwrap_or(0.0);
        }
        total
    };
    wait_for("the loop's first tick", Duration::from_secs(30), || async {
        (ticks().await >= 1.0).then_some(())
    })
    .await;
    let node_api: Api<Node> = Api::all(world.client.clone());
    // First what pools do not act on (an annotation, like a heartbeat): it must not reach them.
    let quiet_before = reconciles(&world).await;
    let (quiet_updates, _) = storm(
        &node_api,
        &nodes,
        Duration::from_secs(10),
        |n| json!({"metadata": {"annotations": {"e2e/storm": n.to_string()}}}),
    )
    .await;
    let quiet = reconciles(&world).await - quiet_before;
    // Then what they do act on (a label, as a node relabelled again and again): every change
    // reaches the pool, and the loop must keep its clock through the reconciles.
    let before = ticks().await;
    let reconciles_before = reconciles(&world).await;
    let (updates, elapsed) = storm(
        &node_api,
        &nodes,
        Duration::from_secs(20),
        |n| json!({"metadata": {"labels": {"e2e/storm-generation": n.to_string()}}}),
    )
    .await;
    let during = ticks().await - before;
    let reconciled = reconciles(&world).await - reconciles_before;
    // The interval is 2 s: a loop that keeps its clock ticks about elapsed/2 times; one reset
    // by every update would tick about never. Half is the line, far from both.
    let expected = elapsed.as_secs_f64() / 2.0;
    println!(
        "storm: {quiet_updates} annotation updates made {quiet} reconciles; {updates} label updates \
         made {reconciled} reconciles in {:.1} s; the loop ticked {during} times (about \
         {expected:.0} expected)",
        elapsed.as_secs_f64()
    );
    assert!(
        quiet < f64::from(quiet_updates) / 10.0,
        "{quiet} reconciles for {quiet_updates} updates nothing acts on"
    );
    assert!(
        reconciled >= 10.0,
        "the label storm did not reach the operator ({reconciled} reconciles)"
    );
    assert!(
        during >= expected / 2.0,
        "the vertical loop ticked {during} times in {:.1} s of node updates",
        elapsed.as_secs_f64()
    );
}

/// Patches every node of `nodes` with `patch(n)` every 100 ms for `length`; returns the updates
/// made and the time they took.
async fn storm(
    node_api: &Api<Node>,
    nodes: &[&str],
    length: Duration,
    patch: impl Fn(u32) -> serde_json::Value,
) -> (u32, Duration) {
    let started = std::time::Instant::now();
    let mut updates = 0u32;
    while started.elapsed() < length {
        for node in nodes {
            node_api
                .patch(
                    node,
                    &PatchParams::default(),
                    &Patch::Merge(&patch(updates)),
                )
                .await
                .expect("node updated");
            updates += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (updates, started.elapsed())
}

async fn reconciles(world: &World) -> f64 {
    let operators = world.operators.lock().await;
    let mut total = 0.0;
    for operator in operators.iter() {
        total += operator
            .metric("elastic_yarn_operator_reconciles_total", &[])
            .await
            .unwrap_or(0.0);
    }
    total
}

/// Deleting a pool: the finalizer takes the pool's YARN label off its NMs and its entries out
/// of the nodes' `thirdPartyAllocations`; then the real garbage collector removes the pods, the
/// guarder token Secret and the Spark defaults ConfigMap.
pub async fn deleting_a_pool_leaves_nothing_behind(world: Arc<World>) {
    let ns = world.namespace("e2e-delete").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-delete-1", "e2e-delete-2"];
    world.nodes(&nodes, &[("e2e/pool", "delete")]).await;
    world.operator().await;
    let mut pool = manifest(&world, &ns, "doomed", "delete", resident());
    pool["spec"]["koordinator"] = json!({"accounting": "ThirdParty"});
    pool["spec"]["shuffle"] =
        json!({"uniffle": {"coordinators": ["uniffle-coordinator.uniffle:19999"]}});
    pools::create(&world.client, &pool).await;
    let pods = wait_for_running(&world, &ns, "doomed", &nodes).await;
    let ids = register(&world, &pods, NM_CAPACITY);
    wait_labelled(&world, &ids, "elastic").await;
    let node_api: Api<Node> = Api::all(world.client.clone());
    let entry = elastic_yarn_operator::controller::third_party::allocation_name(&ns, "doomed");
    let has_entry = |node: &Node| {
        node.annotations()
            .get(elastic_yarn_operator::controller::third_party::ANNOTATION)
            .is_some_and(|a| a.contains(&entry))
    };
    wait_for(
        "thirdPartyAllocations on both nodes",
        Duration::from_secs(60),
        || async {
            let mut all = true;
            for node in nodes {
                all &= node_api.get(node).await.is_ok_and(|n| has_entry(&n));
            }
            all.then_some(())
        },
    )
    .await;
    let selector = format!("{}=doomed", elastic_yarn_operator::build::names::POOL_LABEL);
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &ns);
    let maps: Api<ConfigMap> = Api::namespaced(world.client.clone(), &ns);
    let count = || async {
        let params = ListParams::default().labels(&selector);
        let pods = Api::<Pod>::namespaced(world.client.clone(), &ns)
            .list(&params)
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX);
        let secrets = secrets
            .list(&params)
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX);
        let maps = maps
            .list(&params)
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX);
        (pods, secrets, maps)
    };
    let (pod_count, secret_count, map_count) = count().await;
    assert_eq!(pod_count, 2);
    assert!(
        secret_count >= 1,
        "the guarder token Secret carries the pool's labels"
    );
    assert!(
        map_count >= 1,
        "the Spark defaults ConfigMap carries the pool's labels"
    );

    let pools_api: Api<elastic_yarn_operator::crd::ElasticNodePool> =
        Api::namespaced(world.client.clone(), &ns);
    pools_api
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("pool deleted");
    wait_for(
        "the finalizer to let the pool go",
        Duration::from_secs(60),
        || async {
            pools_api
                .get_opt("doomed")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    wait_for(
        "the garbage collector to remove the children",
        Duration::from_secs(90),
        || async { (count().await == (0, 0, 0)).then_some(()) },
    )
    .await;
    for id in &ids {
        let node = world.rm.cluster().node(id).expect("still known to the RM");
        assert!(
            !node.labels.iter().any(|l| l == "elastic"),
            "{id} kept the pool's label"
        );
    }
    for node in nodes {
        let node = node_api.get(node).await.expect("node");
        assert!(
            !has_entry(&node),
            "{} kept the pool's thirdPartyAllocations entry",
            node.name_any()
        );
    }
}

/// Pools may not make the operator call the cluster's own API server, loopback or the
/// link-local metadata address: such a pool is refused (`Ready=False/EgressDenied`, an
/// `InvalidSpec` Event), gets no NM pod, and nothing the refused URL would answer reaches status.
pub async fn pools_may_not_point_the_operator_at_the_cluster_itself(world: Arc<World>) {
    world.operator().await;
    let ns = world.namespace("e2e-egress").await;
    hadoop_conf(&world.client, &ns).await;
    world
        .nodes(&["e2e-egress-1"], &[("e2e/pool", "egress")])
        .await;
    let mut api_server = manifest(&world, &ns, "api-server", "egress", resident());
    api_server["spec"]["resourceManager"]["addresses"] = json!([world.cluster.server]);
    let mut metadata = manifest(&world, &ns, "metadata", "egress", resident());
    metadata["spec"]["elasticity"]["metrics"] = json!({
        "source": "Prometheus",
        "prometheusUrl": "http://169.254.169.254/latest/",
    });
    for (pool, field) in [
        (api_server, "spec.resourceManager.addresses[0]"),
        (metadata, "spec.elasticity.metrics.prometheusUrl"),
    ] {
        let created = pools::create(&world.client, &pool).await;
        let name = created.name_any();
        let status = wait_for_status(&world, &ns, &name, "Ready=False/EgressDenied", |s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "EgressDenied")
        })
        .await;
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("a Ready condition");
        assert!(ready.message.contains(field), "{name}: {}", ready.message);
        assert!(
            ready.message.contains("egress policy"),
            "{name}: {}",
            ready.message
        );
        assert!(
            event_reasons(&world.client, &ns, &name)
                .await
                .iter()
                .any(|r| r == "InvalidSpec"),
            "{name}: an InvalidSpec Event"
        );
        assert!(
            node_manager_pods(&world.client, &ns, &name)
                .await
                .is_empty(),
            "{name}: no NM pod for a refused pool"
        );
    }
}

/// A node dies while its NM drains (containers still run, so the drain cannot end early): the
/// drained NM's pod and status row go, the pool's other NM keeps running without a problem on
/// its row, and the pool stays Online.
pub async fn a_node_that_dies_during_its_drain_stops_nothing_else(world: Arc<World>) {
    let ns = world.namespace("e2e-deadnode").await;
    hadoop_conf(&world.client, &ns).await;
    let nodes = ["e2e-deadnode-1", "e2e-deadnode-2"];
    world.nodes(&nodes, &[("e2e/pool", "deadnode")]).await;
    world.operator().await;
    let mut pool = manifest(&world, &ns, "deadnode", "deadnode", resident());
    pool["spec"]["guarder"]["gracePeriodSeconds"] = json!(300);
    pools::create(&world.client, &pool).await;
    let pods = wait_for_running(&world, &ns, "deadnode", &nodes).await;
    let ids = register(&world, &pods, NM_CAPACITY);
    for id in &ids {
        world.rm.cluster().set_used(
            id,
            Resources {
                memory_mb: 4096,
                vcores: 2,
            },
            2,
        );
    }
    let dying = pods
        .iter()
        .find(|p| node_of(p) == nodes[0])
        .expect("an NM on the first node");
    pools::drain_by_ineligibility(&world.client, &ns, nodes[0], &dying.name_any()).await;
    let node_api: Api<Node> = Api::all(world.client.clone());
    node_api
        .delete(nodes[0], &DeleteParams::default())
        .await
        .expect("node deleted");
    let status = wait_for_status(&world, &ns, "deadnode", "only the live node's row", |s| {
        s.node_managers.len() == 1 && s.node_managers[0].node == nodes[1]
    })
    .await;
    assert_eq!(status.phase, Some(PoolPhase::Online));
    assert_eq!(status.node_managers[0].state, NodeManagerState::Running);
    assert_eq!(
        status.node_managers[0].problem, None,
        "the live NM is not touched by the dead one"
    );
    wait_for(
        "the dead node's NM pod gone, the other still running",
        Duration::from_secs(150),
        || async {
            let pods = node_manager_pods(&world.client, &ns, "deadnode").await;
            (pods.len() == 1 && node_of(&pods[0]) == nodes[1] && running(&pods[0])).then_some(())
        },
    )
    .await;
}
