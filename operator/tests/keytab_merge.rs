//! The operator's merged client keytab against a real MIT KDC: two pools' keytabs, exported by
//! `kadmin.local` for two principals, merged by `KeytabStore`, then `kinit -k -t` with the merged
//! file authenticates as each principal.

use std::process::Command;

use elastic_yarn_operator::controller::keytabs::{self, KeytabStore};
use testkit::kdc::{Kdc, REALM};

#[test]
fn a_merged_keytab_authenticates_every_pools_principal() {
    let Some(kdc) = Kdc::start() else {
        return;
    };
    let principals = [format!("pool-a@{REALM}"), format!("pool-b@{REALM}")];
    let mut store = KeytabStore::new(Some(kdc.path("client.keytab")));
    for (index, principal) in principals.iter().enumerate() {
        kdc.add_principal(principal);
        let own = kdc.path(&format!("pool-{index}.keytab"));
        kdc.export(&own, &[principal]);
        let bytes = std::fs::read(&own).expect("keytab");
        // kadmin writes one entry per encryption type: one principal.
        assert_eq!(
            keytabs::principals(&bytes).expect("a readable keytab"),
            std::slice::from_ref(principal)
        );
        store
            .set(&format!("yarn/pool-{index}"), bytes, principal)
            .expect("merged");
    }
    // A pool whose own keytab is pool-b's may not name pool-a's principal, though the merged
    // file holds it.
    let error = store
        .set(
            "yarn/intruder",
            std::fs::read(kdc.path("pool-1.keytab")).expect("keytab"),
            &principals[0],
        )
        .expect_err("refused");
    assert!(error.to_string().contains("no key for pool-a@"), "{error}");
    let (key, value) = kdc.krb5_config_env();
    let listing = Command::new("klist")
        .args(["-k", "-t"])
        .arg(kdc.path("client.keytab"))
        .env(key, &value)
        .output()
        .expect("klist runs");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for (index, principal) in principals.iter().enumerate() {
        assert!(listing.contains(principal.as_str()), "{listing}");
        let kinit = Command::new("kinit")
            .args(["-k", "-t"])
            .arg(kdc.path("client.keytab"))
            .arg(principal)
            .env(key, &value)
            .env(
                "KRB5CCNAME",
                format!("FILE:{}", kdc.path(&format!("cc-{index}")).display()),
            )
            .output()
            .expect("kinit runs");
        assert!(
            kinit.status.success(),
            "kinit as {principal}: {}",
            String::from_utf8_lossy(&kinit.stderr)
        );
    }
}
