//! Live reload: `bastion serve` picks up a changed policy file by itself; a set that does not
//! validate is refused with file:line:column in the log and the previous set stays in force.
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;

fn wait_for_log(b: &BastionProcess, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if b.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn changed_policy_file_is_reloaded_and_a_broken_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policies");
    std::fs::create_dir_all(&pol).unwrap();
    std::fs::write(
        pol.join("base.cedar"),
        "@id(\"ALL\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("pw"), "x").unwrap();
    let config = format!(
        "[server]\npostgres_listen = \"127.0.0.1:{{PG_PORT}}\"\nstate_dir = \"{{DIR}}/state\"\naudit_dir = \"{{DIR}}/audit\"\n\
         [[targets]]\nname = \"db\"\nprotocol = \"postgres\"\naddress = \"127.0.0.1:1\"\nupstream_user = \"u\"\n\
         credential = \"file:{d}/pw\"\ntls = \"disable\"\n[policies]\npaths = [\"{d}/policies\"]\n",
        d = dir.path().display()
    );
    let b = BastionProcess::start(&config).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(
        pol.join("base.cedar"),
        "@id(\"ALL\")\npermit(principal, action resource);\n",
    )
    .unwrap();
    assert!(wait_for_log(&b, "policy reload refused"), "{}", b.log());
    assert!(b.log().contains("base.cedar:2:"), "{}", b.log());
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(
        pol.join("base.cedar"),
        "@id(\"ALL\")\nforbid(principal, action, resource);\n",
    )
    .unwrap();
    assert!(wait_for_log(&b, "policies reloaded"), "{}", b.log());
}
