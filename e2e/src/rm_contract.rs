//! What the operator relies on from a ResourceManager's REST API, as one sequence of calls and
//! expectations. The YARN suite runs it against the real RM of every Hadoop line and against
//! `yarn-rm-double`, so a difference between the double and the real RM fails one of them.

use yarn_rm::{
    HaState, LabelOutcome, NodeId, NodeState, OverCommitTimeout, ResourceManager, Resources,
    RestResourceManager, RestSettings, RmAuth, Secret,
};

/// An RM under contract: its web address and two RUNNING nodes it knows.
#[derive(Debug)]
pub struct Subject<'a> {
    /// What the report calls it.
    pub name: &'a str,
    /// `http://host:port`.
    pub url: &'a str,
    /// Two RUNNING nodes.
    pub nodes: &'a [NodeId],
    /// A node id no NodeManager has.
    pub unknown: NodeId,
    /// A label name this RM has never seen.
    pub fresh_label: &'a str,
}

/// Runs the contract; panics with the first difference.
pub async fn check(subject: &Subject<'_>) {
    let name = subject.name;
    let rm = RestResourceManager::new(RestSettings::new(
        vec![subject.url.to_owned()],
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    ))
    .expect("a client");
    let [first, second] = subject.nodes else {
        panic!("{name}: the contract needs two nodes");
    };

    let info = rm.cluster_info().await.expect("cluster info");
    assert_eq!(
        info.ha_state,
        HaState::Active,
        "{name}: the RM is active: {info:?}"
    );

    // Listing and reading nodes.
    let all = rm.nodes(&[]).await.expect("every node");
    let running = rm
        .nodes(&[NodeState::Running])
        .await
        .expect("RUNNING nodes");
    for node in [first, second] {
        assert!(all.iter().any(|n| &n.id == node), "{name}: {node} listed");
        assert!(
            running.iter().any(|n| &n.id == node),
            "{name}: {node} RUNNING"
        );
    }
    let report = rm.node(first).await.expect("one node");
    assert_eq!(&report.id, first, "{name}");
    assert_eq!(report.state, NodeState::Running, "{name}");
    let original = report.capacity();
    assert!(
        original.vcores > 1 && original.memory_mb > 1024,
        "{name}: {original:?}"
    );
    assert!(
        report.node_labels.is_empty(),
        "{name}: no labels yet: {report:?}"
    );

    // A resize is confirmed by reading the node back.
    let smaller = Resources {
        memory_mb: original.memory_mb / 2,
        vcores: original.vcores / 2,
    };
    let outcome = rm
        .resize(first, smaller, OverCommitTimeout::Never)
        .await
        .expect("resize");
    // The RM answers the node's total right after handing the change to its dispatcher: the
    // new capacity or, when the answer wins that race, the one before.
    assert!(
        outcome.accepted == smaller || outcome.accepted == original,
        "{name}: the answer shows the new or the previous capacity: {outcome:?}"
    );
    assert_eq!(outcome.confirmed, smaller, "{name}");
    let reread = rm.node(first).await.expect("node after the resize");
    assert_eq!(reread.capacity(), smaller, "{name}");
    assert_eq!(
        reread.avail_memory_mb + reread.used_memory_mb,
        i64::try_from(smaller.memory_mb).unwrap_or(i64::MAX),
        "{name}: available + used is the new capacity"
    );
    let with_timeout = rm
        .resize(first, original, OverCommitTimeout::Seconds(30))
        .await
        .expect("resize back with an over-commit timeout");
    assert_eq!(with_timeout.confirmed, original, "{name}");

    // Labels: created once, non-exclusive, then already present; set on a node and removed.
    let created = rm
        .ensure_node_label(subject.fresh_label)
        .await
        .expect("label");
    assert_eq!(created, LabelOutcome::Created, "{name}");
    let again = rm
        .ensure_node_label(subject.fresh_label)
        .await
        .expect("label again");
    assert_eq!(again, LabelOutcome::AlreadyPresent, "{name}");
    let labels = rm.node_labels().await.expect("labels");
    let label = labels
        .iter()
        .find(|l| l.name == subject.fresh_label)
        .unwrap_or_else(|| panic!("{name}: label listed in {labels:?}"));
    assert!(!label.exclusivity, "{name}: non-exclusive");
    let wanted = vec![subject.fresh_label.to_owned()];
    rm.set_node_labels(first, &wanted)
        .await
        .expect("set labels");
    assert_eq!(
        rm.node(first).await.expect("node").node_labels,
        wanted,
        "{name}: the node carries the label"
    );
    assert!(
        rm.node(second).await.expect("node").node_labels.is_empty(),
        "{name}: the other node does not"
    );
    rm.set_node_labels(first, &[]).await.expect("remove labels");
    assert!(
        rm.node(first).await.expect("node").node_labels.is_empty(),
        "{name}: labels removed"
    );

    check_errors(&rm, subject).await;
}

/// Errors: typed, with the RM's own message where the operator shows it.
async fn check_errors(rm: &RestResourceManager, subject: &Subject<'_>) {
    let name = subject.name;
    let first = &subject.nodes[0];
    let missing = rm.node(&subject.unknown).await.expect_err("unknown node");
    assert_eq!(missing.category(), "not_found", "{name}: {missing}");
    assert!(
        missing
            .to_string()
            .contains(&format!("nodeId, {}, is not found", subject.unknown)),
        "{name}: {missing}"
    );
    let unknown_resize = rm
        .resize(
            &subject.unknown,
            Resources::default(),
            OverCommitTimeout::Never,
        )
        .await
        .expect_err("resize of an unknown node");
    assert_eq!(
        unknown_resize.category(),
        "not_found",
        "{name}: {unknown_resize}"
    );

    let unknown_label = rm
        .set_node_labels(first, &["nonexistent".to_owned()])
        .await
        .expect_err("label not in the cluster");
    assert_eq!(
        unknown_label.category(),
        "bad_request",
        "{name}: {unknown_label}"
    );
    assert!(
        rm.node(first).await.expect("node").node_labels.is_empty(),
        "{name}: a refused label is not set"
    );

    let invalid = rm
        .ensure_node_label("not a label")
        .await
        .expect_err("bad name");
    assert_eq!(invalid.category(), "invalid_input", "{name}");

    // A call with no user name (no `user.name`, no Kerberos) is refused by a production RM
    // (anonymous callers not allowed), reads and writes alike.
    let anonymous = RestResourceManager::new(RestSettings::new(
        vec![subject.url.to_owned()],
        RmAuth::DelegationToken {
            token: Secret::new("not-checked-by-a-simple-rm"),
        },
    ))
    .expect("client");
    let refused = anonymous
        .resize(first, Resources::default(), OverCommitTimeout::Never)
        .await
        .expect_err("no user");
    assert_eq!(refused.category(), "unauthorized", "{name}: {refused}");
    let refused = anonymous.node(first).await.expect_err("no user");
    assert_eq!(refused.category(), "unauthorized", "{name}: {refused}");

    // A user who is not a YARN administrator may read but not resize or label.
    let stranger = RestResourceManager::new(RestSettings::new(
        vec![subject.url.to_owned()],
        RmAuth::Simple {
            user: "nobody".to_owned(),
        },
    ))
    .expect("client");
    let capacity0 = stranger
        .node(first)
        .await
        .expect("anyone may read a node")
        .capacity();
    // YARN's admin ACL guards label writes (a 401 AuthorizationException, read as forbidden)
    // but not a resize: RMWebServices hands the resize to the AdminService in the RM's own
    // name, so any authenticated caller may change a node's capacity (3.4.2 and 3.5.0 alike).
    let resized = stranger
        .resize(
            first,
            Resources {
                memory_mb: 1024,
                vcores: 1,
            },
            OverCommitTimeout::Never,
        )
        .await
        .expect("a resize by a non-admin is accepted");
    assert_eq!(resized.confirmed.vcores, 1, "{name}");
    for refused in [
        stranger
            .set_node_labels(first, &[])
            .await
            .expect_err("label write by a non-admin"),
        stranger
            .ensure_node_label("stranger")
            .await
            .expect_err("label write by a non-admin"),
    ] {
        assert_eq!(refused.category(), "forbidden", "{name}: {refused}");
        assert!(
            refused
                .to_string()
                .contains("User nobody not authorized for post to"),
            "{name}: {refused}"
        );
    }
    rm.resize(first, capacity0, OverCommitTimeout::Never)
        .await
        .expect("restore");
}
