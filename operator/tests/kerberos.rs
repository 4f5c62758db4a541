//! Kerberos (SPNEGO) end to end with a real MIT KDC on loopback.
//!
//! MIT Kerberos takes its keytabs and configuration from the process environment, which a
//! running multi-threaded test process must not change. So each test starts the KDC, makes the
//! principals and keytabs, and then runs the code under test in a child process with that
//! environment: either this test binary again (an `#[ignore]`d inner test that drives the
//! library and an in-process RM double, so it can inspect every request), or the real
//! `elastic-yarn-operator yarn` command against the real `yarn-rm-double` binary.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::rm_double::{self, DoubleProcess};
use testkit::kdc::{Kdc, REALM};
use yarn_rm::{
    NodeId, OverCommitTimeout, ResourceManager, Resources, RestResourceManager, RestSettings,
    RetryPolicy, RmAuth,
};
use yarn_rm_double::{Credential, DoubleAuth, DoubleCluster, RmDouble, Role, SpnegoAcceptor};

const CLIENT: &str = "elastic-yarn";
const SERVICE: &str = "HTTP/localhost";
/// Set in the child process: the folder with the realm's files.
const INNER_MARKER: &str = "ELASTIC_YARN_KDC_DIR";

fn principal(name: &str) -> String {
    format!("{name}@{REALM}")
}

/// The realm for every test: a client, the RM's HTTP service, a client whose keytab is stale
/// (re-keyed after export) and a client whose principal has expired.
fn realm() -> Option<Kdc> {
    let kdc = Kdc::start()?;
    for name in [CLIENT, SERVICE, "stale", "expired"] {
        kdc.add_principal(&principal(name));
    }
    let client_keytab = kdc.path("client.keytab");
    kdc.export(
        &client_keytab,
        &[
            &principal(CLIENT),
            &principal("stale"),
            &principal("expired"),
        ],
    );
    kdc.kadmin(&format!("cpw -randkey {}", principal("stale")));
    kdc.kadmin(&format!(
        "modprinc -expire \"2020-01-01 00:00:00 UTC\" {}",
        principal("expired")
    ));
    // The RM's keytab, and an older copy whose key no longer matches (an RM with a stale keytab).
    kdc.export(&kdc.path("http-old.keytab"), &[&principal(SERVICE)]);
    kdc.export(&kdc.path("http.keytab"), &[&principal(SERVICE)]);
    Some(kdc)
}

#[test]
fn spnego_with_a_real_kdc_through_the_library() {
    let Some(kdc) = realm() else { return };
    std::fs::create_dir(kdc.path("ccache")).expect("ticket cache collection");
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "inner_spnego_through_the_library",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_MARKER, kdc.path(""))
        .env("KRB5_CONFIG", &kdc.krb5_conf)
        .env("KRB5_CLIENT_KTNAME", kdc.path("client.keytab"))
        .env("KRB5_KTNAME", kdc.path("http.keytab"))
        .env(
            "KRB5CCNAME",
            format!("DIR:{}", kdc.path("ccache").display()),
        )
        .output()
        .expect("run the inner test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "inner test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn kerberos_client(url: &str, name: &str) -> RestResourceManager {
    let mut settings = RestSettings::new(
        vec![url.to_owned()],
        RmAuth::Kerberos {
            principal: principal(name),
            service: None,
        },
    );
    settings.retry = RetryPolicy::none();
    RestResourceManager::new(settings).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by spnego_with_a_real_kdc_through_the_library inside the realm's environment"]
async fn inner_spnego_through_the_library() {
    if std::env::var_os(INNER_MARKER).is_none() {
        eprintln!("not inside the KDC environment; run spnego_with_a_real_kdc_through_the_library");
        return;
    }
    let acceptor =
        tokio::task::spawn_blocking(|| SpnegoAcceptor::from_environment(Duration::from_secs(3600)))
            .await
            .expect("task")
            .expect("the RM's keytab loads");
    let cluster = DoubleCluster::with_nodes(
        2,
        Resources {
            memory_mb: 65536,
            vcores: 32,
        },
    );
    let double = RmDouble::new(cluster, Role::Active, DoubleAuth::Kerberos(acceptor));
    let (address, _task) = double.clone().spawn().await.expect("bind");
    // The host name must match the service principal HTTP/localhost.
    let url = format!("http://localhost:{}", address.port());

    // Missing and bad tokens are refused as Hadoop's AuthenticationFilter does.
    let http = controlkit::process::http_client()
        .build()
        .expect("an HTTP client");
    let anonymous = http
        .get(format!("{url}/ws/v1/cluster/nodes"))
        .send()
        .await
        .expect("anonymous request");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ascii")),
        Some("Negotiate")
    );
    let forged = http
        .get(format!("{url}/ws/v1/cluster/nodes"))
        .header("Authorization", "Negotiate YWJjZGVm")
        .send()
        .await
        .expect("forged request");
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.expect("body").contains("GSSException"));

    // The right keytab: one SPNEGO exchange, then the cookie.
    let rm = kerberos_client(&url, CLIENT);
    assert_eq!(rm.nodes(&[]).await.expect("authenticated").len(), 2);
    let id: NodeId = "nm-0.yarn.test:45454".parse().expect("id");
    let capacity = Resources {
        memory_mb: 8192,
        vcores: 4,
    };
    rm.resize(&id, capacity, OverCommitTimeout::Never)
        .await
        .expect("resize with the cookie");
    let credentials: Vec<(Credential, u16)> = double
        .requests()
        .iter()
        .skip(2)
        .map(|request| (request.credential, request.outcome))
        .collect();
    assert_eq!(
        credentials,
        vec![
            (Credential::Negotiate, 200),
            (Credential::Cookie, 200),
            (Credential::Cookie, 200)
        ]
    );

    // The RM forgets its sessions (restart, expiry): 401 on the cookie, then a new exchange.
    double.expire_sessions();
    assert_eq!(
        rm.node(&id).await.expect("re-authenticated").capacity(),
        capacity
    );
    let last: Vec<(Credential, u16)> = double
        .requests()
        .iter()
        .rev()
        .take(2)
        .map(|request| (request.credential, request.outcome))
        .collect();
    assert_eq!(
        last,
        vec![(Credential::Negotiate, 200), (Credential::Cookie, 401)]
    );

    // A stale keytab and an expired principal fail on the client with Kerberos' own reason.
    let stale = kerberos_client(&url, "stale")
        .nodes(&[])
        .await
        .expect_err("stale keytab");
    assert_eq!(stale.category(), "kerberos", "{stale}");
    assert!(
        stale.to_string().contains("integrity check failed")
            || stale.to_string().contains("Preauthentication failed"),
        "{stale}"
    );
    let expired = kerberos_client(&url, "expired")
        .nodes(&[])
        .await
        .expect_err("expired");
    assert_eq!(expired.category(), "kerberos", "{expired}");
    assert!(expired.to_string().contains("expired"), "{expired}");
    let unknown = kerberos_client(&url, "nobody")
        .nodes(&[])
        .await
        .expect_err("not in keytab");
    assert_eq!(unknown.category(), "kerberos", "{unknown}");

    // None of the refused clients reached the RM, and no secret reached the error texts.
    assert_eq!(double.requests().len(), 7);
    for error in [&stale, &expired, &unknown] {
        assert!(!error.to_string().contains("Negotiate "), "{error}");
    }
}

fn spawn_double(kdc: &Kdc, service_keytab: &Path) -> DoubleProcess {
    rm_double::spawn(
        &["--kerberos"],
        &[
            ("KRB5_CONFIG", kdc.krb5_conf.as_path()),
            ("KRB5_KTNAME", service_keytab),
        ],
    )
}

fn cli(kdc: &Kdc, url: &str, keytab: &str, name: &str, command: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_elastic-yarn-operator"))
        .args(["yarn", "--rm", url, "--keytab"])
        .arg(kdc.path(keytab))
        .args(["--principal", &principal(name), "--krb5-config"])
        .arg(&kdc.krb5_conf)
        .args(command)
        // The admin's own environment must not leak in: the command sets what it needs.
        .env_remove("KRB5_CLIENT_KTNAME")
        .env_remove("KRB5CCNAME")
        .env_remove("KRB5_CONFIG")
        .output()
        .expect("run elastic-yarn-operator yarn")
}

#[test]
fn the_admin_command_authenticates_with_a_keytab_against_a_kerberized_rm() {
    let Some(kdc) = realm() else { return };
    let double = spawn_double(&kdc, &kdc.path("http.keytab"));
    let url = double.url("localhost");

    let resize = [
        "resize",
        "nm-1.yarn.test:45454",
        "--vcores",
        "6",
        "--memory-mb",
        "24576",
    ];
    let ok = cli(&kdc, &url, "client.keytab", CLIENT, &resize);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "resize failed: {stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("-> 6 vcores / 24576 MiB (confirmed after 1 read)"),
        "{stdout}"
    );

    let recorded: serde_json::Value = fetch::json(&format!("{}/_double/requests", url));
    let credentials: Vec<(&str, u64)> = recorded
        .as_array()
        .expect("list")
        .iter()
        .map(|request| {
            (
                request["credential"].as_str().expect("credential"),
                request["outcome"].as_u64().expect("status"),
            )
        })
        .collect();
    // The node read before the resize (to show the old capacity) negotiates; the resize and
    // its confirming read reuse the session cookie.
    assert_eq!(
        credentials,
        vec![("Negotiate", 200), ("Cookie", 200), ("Cookie", 200)]
    );

    let stale = cli(&kdc, &url, "client.keytab", "stale", &["nodes"]);
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(!stale.status.success());
    assert!(stderr.contains("[kerberos]"), "{stderr}");

    let expired = cli(&kdc, &url, "client.keytab", "expired", &["nodes"]);
    let stderr = String::from_utf8_lossy(&expired.stderr);
    assert!(!expired.status.success());
    assert!(
        stderr.contains("Client's entry in database has expired"),
        "{stderr}"
    );

    let missing = cli(&kdc, &url, "no-such.keytab", CLIENT, &["nodes"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("is not a readable file"), "{stderr}");
}

#[test]
fn an_rm_with_a_stale_service_keytab_refuses_with_its_reason() {
    let Some(kdc) = realm() else { return };
    let double = spawn_double(&kdc, &kdc.path("http-old.keytab"));
    let url = double.url("localhost");
    let refused = cli(&kdc, &url, "client.keytab", CLIENT, &["nodes"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("(403)") && stderr.contains("[forbidden]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kvno"),
        "the RM's GSSAPI reason is shown: {stderr}"
    );
}

mod fetch {
    //! A blocking GET for the synchronous tests, on a throwaway runtime.
    pub fn json(url: &str) -> serde_json::Value {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let body = controlkit::process::http_get(url)
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body");
            serde_json::from_slice(&body).expect("JSON")
        })
    }
}
