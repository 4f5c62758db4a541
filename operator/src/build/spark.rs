//! The Spark settings a pool with remote shuffle publishes for its jobs, as a ConfigMap
//! `<pool>-spark-defaults` (key `spark-defaults.conf`): Uniffle as shuffle manager, no external
//! shuffle service (the NMs run none), executors on the pool's YARN node label, and
//! decommissioning on so that the guarder's SIGPWR moves an executor's blocks before it goes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::PoolRef;
use crate::crd::ElasticNodePoolSpec;

/// Key of the file in the ConfigMap.
pub const SPARK_DEFAULTS_KEY: &str = "spark-defaults.conf";

/// Name of the ConfigMap.
pub fn spark_defaults_name(pool: &str) -> String {
    format!("{pool}-spark-defaults")
}

/// The `spark-defaults.conf` lines for jobs on this pool, or `None` without remote shuffle.
pub fn spark_defaults_conf(spec: &ElasticNodePoolSpec, node_label: &str) -> Option<String> {
    let uniffle = spec.shuffle.as_ref()?.uniffle.as_ref()?;
    let decommission = spec.guarder.spark_decommission;
    let settings: [(&str, String); 9] = [
        // Uniffle moves serialized records between hosts: the serializer must support
        // relocation of serialized objects.
        (
            "spark.serializer",
            "org.apache.spark.serializer.KryoSerializer".to_owned(),
        ),
        (
            "spark.shuffle.manager",
            "org.apache.spark.shuffle.RssShuffleManager".to_owned(),
        ),
        (
            "spark.rss.coordinator.quorum",
            uniffle.coordinators.join(","),
        ),
        // The NMs run no shuffle service; shuffle data lives on the Uniffle servers.
        ("spark.shuffle.service.enabled", "false".to_owned()),
        // Local shuffle reading is for the external shuffle service.
        (
            "spark.sql.adaptive.localShuffleReader.enabled",
            "false".to_owned(),
        ),
        (
            "spark.yarn.executor.nodeLabelExpression",
            node_label.to_owned(),
        ),
        ("spark.decommission.enabled", decommission.to_string()),
        // Cached blocks move to other executors on SIGPWR; shuffle blocks are remote already.
        (
            "spark.storage.decommission.enabled",
            decommission.to_string(),
        ),
        (
            "spark.storage.decommission.rddBlocks.enabled",
            decommission.to_string(),
        ),
    ];
    let mut text = String::from(
        "# Published by elastic-yarn-operator for jobs on its NodeManagers; do not edit.\n",
    );
    for (key, value) in settings {
        text.push_str(key);
        text.push(' ');
        text.push_str(&value);
        text.push('\n');
    }
    Some(text)
}

/// The ConfigMap, or `None` without remote shuffle.
pub fn spark_defaults(
    pool: &PoolRef,
    spec: &ElasticNodePoolSpec,
    node_label: &str,
) -> Option<ConfigMap> {
    let text = spark_defaults_conf(spec, node_label)?;
    Some(ConfigMap {
        metadata: pool.child_metadata(spark_defaults_name(&pool.name), "spark-defaults"),
        data: Some(BTreeMap::from([(SPARK_DEFAULTS_KEY.to_owned(), text)])),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nightly() -> crate::crd::ElasticNodePool {
        serde_yaml::from_str(include_str!("../../../docs/examples/nightly-pool.yaml")).unwrap()
    }

    fn settings(text: &str) -> BTreeMap<&str, &str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .collect()
    }

    #[test]
    fn uniffle_pools_publish_what_spark_jobs_need() {
        let pool = nightly();
        let pool_ref = PoolRef {
            name: "nightly".into(),
            namespace: "yarn".into(),
            uid: "u".into(),
        };
        let map = spark_defaults(&pool_ref, &pool.spec, "elastic").unwrap();
        assert_eq!(map.metadata.name.as_deref(), Some("nightly-spark-defaults"));
        assert_eq!(map.metadata.owner_references.as_ref().unwrap()[0].uid, "u");
        let text = &map.data.as_ref().unwrap()[SPARK_DEFAULTS_KEY];
        let got = settings(text);
        assert_eq!(
            got["spark.shuffle.manager"],
            "org.apache.spark.shuffle.RssShuffleManager"
        );
        assert_eq!(
            got["spark.rss.coordinator.quorum"],
            "uniffle-coordinator-0.uniffle.svc:19999,uniffle-coordinator-1.uniffle.svc:19999"
        );
        assert_eq!(got["spark.shuffle.service.enabled"], "false");
        assert_eq!(got["spark.decommission.enabled"], "true");
        assert_eq!(got["spark.yarn.executor.nodeLabelExpression"], "elastic");
        assert_eq!(
            got["spark.serializer"],
            "org.apache.spark.serializer.KryoSerializer"
        );
    }

    #[test]
    fn decommissioning_follows_the_guarder_and_no_uniffle_publishes_nothing() {
        let mut pool = nightly();
        pool.spec.guarder.spark_decommission = false;
        let text = spark_defaults_conf(&pool.spec, "elastic").unwrap();
        assert_eq!(settings(&text)["spark.decommission.enabled"], "false");
        pool.spec.shuffle = None;
        assert_eq!(spark_defaults_conf(&pool.spec, "elastic"), None);
    }
}
