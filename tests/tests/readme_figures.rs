//! The figures the README shows are what the main job really produces: the default run is
//! simulated here and compared, row by row, with the README's table.

use std::fs;

use elastic_yarn_operator::sim::{self, SimConfig, Trace};
use elastic_yarn_tests::workspace_root;

/// Table rows of the README: policy name and the numeric cells in order.
fn readme_rows() -> Vec<(String, Vec<String>)> {
    let readme = fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    readme
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| policy"))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_default_run() {
    let trace = Trace::embedded().expect("embedded trace");
    let outcome = sim::run(&SimConfig::default(), &trace, &|_| {}).expect("default run");
    let rows = readme_rows();
    assert_eq!(
        rows.len(),
        outcome.report.policies.len(),
        "one README row per policy"
    );
    for (policy, (name, cells)) in outcome.report.policies.iter().zip(rows) {
        assert_eq!(policy.policy, name);
        let expected = [
            format!("{:.0}", policy.delivered_vcore_hours),
            policy
                .oracle_ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")),
            format!("{:.1}", policy.avg_cluster_cpu_util),
            policy.nm_evictions.to_string(),
            policy.graceful_signals.to_string(),
            policy.forced_kills.to_string(),
            policy.containers_completed.to_string(),
            policy.rm_updates.to_string(),
        ];
        assert_eq!(
            cells,
            expected.to_vec(),
            "README row of {name} differs from the default run; update README.md and docs/policy.md"
        );
    }
}
