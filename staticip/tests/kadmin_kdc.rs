//! Principals and keytabs of addresses through the real MIT `kadmin` client against a real KDC
//! and kadmind on loopback: created, exported (the keytab authenticates with `kinit -k -t`),
//! deleted; a wrong administrator keytab and a dead admin server give clear errors.

use std::path::PathBuf;
use std::time::Duration;

use staticip::kerberos::{Kadmin, KadminTarget, KerberosError};
use testkit::kdc::{ADMIN_PRINCIPAL, Kdc, REALM};

fn kadmin(kdc: &Kdc, admin_keytab: Vec<u8>, admin_port: u16) -> Kadmin {
    Kadmin::new(
        KadminTarget {
            realm: REALM.to_owned(),
            kdcs: vec![format!("127.0.0.1:{}", kdc.port)],
            admin_server: format!("127.0.0.1:{admin_port}"),
            admin_principal: ADMIN_PRINCIPAL.to_owned(),
            admin_keytab,
            timeout: Duration::from_secs(20),
        },
        testkit::program("kadmin").expect("kadmin (krb5-user)"),
    )
    .expect("kadmin files")
}

#[tokio::test]
async fn principals_are_created_exported_and_deleted() {
    let Some(kdc) = Kdc::start_with_kadmind() else {
        return;
    };
    let admin = std::fs::read(kdc.admin_keytab()).expect("admin keytab");
    let kadmin = kadmin(&kdc, admin, kdc.admin_port);
    let principal = format!("nm/nm-10-20-0-5.yarn.test@{REALM}");

    kadmin.ensure_principal(&principal).await.unwrap();
    kadmin
        .ensure_principal(&principal)
        .await
        .expect("an existing principal is kept");
    assert!(kdc.has_principal(&principal));

    let keytab = kadmin.export_keytab(&principal).await.unwrap();
    let file: PathBuf = kdc.path("nm.keytab");
    std::fs::write(&file, &keytab).unwrap();
    kdc.kinit(&principal, &file)
        .expect("the exported keytab authenticates");

    kadmin.delete_principal(&principal).await.unwrap();
    assert!(!kdc.has_principal(&principal));
    kadmin
        .delete_principal(&principal)
        .await
        .expect("deleting a missing principal is fine");
    assert!(
        kdc.kinit(&principal, &file).is_err(),
        "the keytab no longer works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exports_each_hold_only_their_own_principal() {
    let Some(kdc) = Kdc::start_with_kadmind() else {
        return;
    };
    let admin = std::fs::read(kdc.admin_keytab()).expect("admin keytab");
    let kadmin = std::sync::Arc::new(kadmin(&kdc, admin, kdc.admin_port));
    let principals: Vec<String> = (0..8)
        .map(|i| format!("nm/nm-10-20-1-{i}.yarn.test@{REALM}"))
        .collect();
    for principal in &principals {
        kadmin.ensure_principal(principal).await.unwrap();
    }
    let exports = principals.iter().cloned().map(|principal| {
        let kadmin = kadmin.clone();
        tokio::spawn(async move {
            let keytab = kadmin.export_keytab(&principal).await;
            (principal, keytab)
        })
    });
    for export in futures::future::join_all(exports).await {
        let (principal, keytab) = export.unwrap();
        let file = kdc.path(&format!("{}.keytab", principal.replace('/', "_")));
        std::fs::write(&file, keytab.unwrap()).unwrap();
        let (key, value) = kdc.krb5_config_env();
        let listing = std::process::Command::new("klist")
            .args(["-k"])
            .arg(&file)
            .env(key, &value)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        let others: Vec<&String> = principals
            .iter()
            .filter(|p| **p != principal && listing.contains(p.as_str()))
            .collect();
        assert!(listing.contains(principal.as_str()), "{listing}");
        assert!(others.is_empty(), "{principal}'s keytab holds {others:?}");
    }
}

#[tokio::test]
async fn a_wrong_admin_keytab_and_a_dead_admin_server_are_clear_errors() {
    let Some(kdc) = Kdc::start_with_kadmind() else {
        return;
    };
    // A keytab of another principal with the administrator's name nowhere in it.
    kdc.add_principal(&format!("someone@{REALM}"));
    kdc.export(&kdc.path("someone.keytab"), &[&format!("someone@{REALM}")]);
    let wrong = std::fs::read(kdc.path("someone.keytab")).unwrap();
    let error = kadmin(&kdc, wrong, kdc.admin_port)
        .ensure_principal(&format!("nm/x.yarn.test@{REALM}"))
        .await
        .unwrap_err();
    assert!(matches!(error, KerberosError::Refused { .. }), "{error:?}");

    let admin = std::fs::read(kdc.admin_keytab()).unwrap();
    let dead_port = testkit::free_port();
    let error = kadmin(&kdc, admin, dead_port)
        .ensure_principal(&format!("nm/x.yarn.test@{REALM}"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, KerberosError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(!kdc.has_principal(&format!("nm/x.yarn.test@{REALM}")));
}
