//! The RM contract against the real RM of each line and against the double.

use std::sync::Arc;

use elastic_yarn_e2e::rm_contract::{Subject, check};
use elastic_yarn_e2e::yarn_world::YarnWorld;
use yarn_rm::{NodeId, Resources};
use yarn_rm_double::{DoubleAuth, DoubleCluster, RmDouble, Role};

pub async fn the_rm_contract_holds_on_every_line_and_on_the_double(world: Arc<YarnWorld>) {
    for line in &world.lines {
        let name = format!("Hadoop {}", line.version);
        check(&Subject {
            name: &name,
            url: &line.rm_url,
            nodes: &line.nodes,
            unknown: "localhost:1".parse().expect("a node id"),
            fresh_label: "contract",
        })
        .await;
    }
    let cluster = DoubleCluster::with_nodes(
        2,
        Resources {
            memory_mb: 4096,
            vcores: 4,
        },
    );
    let nodes: Vec<NodeId> = (0..2)
        .map(|i| {
            format!("nm-{i}.yarn.test:45454")
                .parse()
                .expect("a node id")
        })
        .collect();
    let (address, _task) = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple)
        .with_admins(&["yarn"])
        .spawn()
        .await
        .expect("the double listens");
    check(&Subject {
        name: "yarn-rm-double",
        url: &format!("http://{address}"),
        nodes: &nodes,
        unknown: "localhost:1".parse().expect("a node id"),
        fresh_label: "contract",
    })
    .await;
}
