//! Interop with stock OpenSSH: `ssh-keygen -Y verify` accepts shipline approvals, and shipline
//! accepts approvals signed by `ssh-keygen -Y sign`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use shipline_core::approval::{
    load_signing_key, sign_approval, Approval, ApprovalDir, ApprovalError, Check, Origin,
    Revocations, SignedApproval, TrustedApprovers, NAMESPACE,
};
use shipline_core::config::{ApprovalPolicy, Approver};

use crate::approval::common::*;

fn ssh_keygen() -> Command {
    let probe = Command::new("ssh-keygen")
        .arg("-?")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        probe.is_ok(),
        "ssh-keygen not found: install openssh-client (bash scripts/prereqs.sh)"
    );
    Command::new("ssh-keygen")
}

/// `ssh-keygen -t TYPE -N '' -f DIR/NAME`; returns the private key path.
fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let out = ssh_keygen()
        .args([
            "-q", "-t", kind, "-a", "2", "-N", passphrase, "-C", name, "-f",
        ])
        .arg(&path)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -t {kind} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn policy_for(identity: &str, pubkey_file: &Path) -> ApprovalPolicy {
    let public_key = std::fs::read_to_string(pubkey_file).expect("read .pub");
    ApprovalPolicy {
        required: 1,
        allow_self_approval: false,
        max_age: std::time::Duration::from_secs(24 * 3600),
        approvers: vec![Approver {
            identity: identity.into(),
            public_key: public_key.trim().into(),
        }],
    }
}

fn ssh_verify(allowed: &Path, identity: &str, sig: &Path, payload: &Path) -> std::process::Output {
    ssh_keygen()
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", identity, "-n", NAMESPACE, "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(payload).expect("open payload"))
        .output()
        .expect("run ssh-keygen -Y verify")
}

#[test]
fn ssh_keygen_verifies_a_shipline_approval() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key_path = keygen(tmp.path(), "alice", "ed25519", "");
    let policy = policy_for("alice@example.com", &key_path.with_extension("pub"));
    let key = load_signing_key(&key_path, None).expect("load key made by ssh-keygen");
    let trusted = TrustedApprovers::from_policy(&policy).expect("policy");
    assert_eq!(trusted.identity_of(&key), Some("alice@example.com"));

    let approval = Approval::new(request("alice@example.com")).expect("approval");
    let signed = sign_approval(&approval, &key).expect("sign");
    let dir = ApprovalDir::new(ENV, tmp.path().join("approvals").join(ENV));
    let payload = dir.save(&signed).expect("save");
    let sig = dir.signature_path(&signed.id());
    let allowed = tmp.path().join("allowed_signers");
    std::fs::write(&allowed, trusted.allowed_signers()).expect("write allowed_signers");

    let out = ssh_verify(&allowed, "alice@example.com", &sig, &payload);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify refused a shipline approval: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Good \"shipline-approval\" signature for alice@example.com"),
        "{stdout}"
    );

    // The same tooling refuses a tampered payload and another identity.
    let tampered = tmp.path().join("tampered.json");
    let text = std::fs::read_to_string(&payload).expect("read payload");
    std::fs::write(&tampered, text.replace(&digest('a'), &digest('b'))).expect("write");
    assert!(!ssh_verify(&allowed, "alice@example.com", &sig, &tampered)
        .status
        .success());
    assert!(!ssh_verify(&allowed, "mallory@example.com", &sig, &payload)
        .status
        .success());
}

#[test]
fn shipline_accepts_approvals_signed_by_ssh_keygen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let key_path = keygen(tmp.path(), &format!("alice-{kind}"), kind, "");
        let policy = policy_for("alice@example.com", &key_path.with_extension("pub"));
        let approval = Approval::new(request("alice@example.com")).expect("approval");
        let payload_path = tmp.path().join(format!("approval-{kind}.json"));
        std::fs::write(&payload_path, approval.to_canonical_json()).expect("write payload");
        let out = ssh_keygen()
            .args(["-Y", "sign", "-f"])
            .arg(&key_path)
            .args(["-n", NAMESPACE])
            .arg(&payload_path)
            .output()
            .expect("run ssh-keygen -Y sign");
        assert!(
            out.status.success(),
            "ssh-keygen -Y sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let candidate = SignedApproval {
            payload: std::fs::read(&payload_path).expect("read payload"),
            signature: std::fs::read_to_string(payload_path.with_extension("json.sig"))
                .expect("read .sig"),
            origin: Origin::Local(payload_path.clone()),
        };
        let decision = verify(
            &policy,
            &digest('a'),
            std::slice::from_ref(&candidate),
            &Revocations::default(),
        )
        .unwrap_or_else(|e| panic!("{kind}: shipline refused an ssh-keygen approval: {e}"));
        assert_eq!(decision.approvers(), ["alice@example.com"], "{kind}");

        // And the ssh-keygen signature does not carry over to another digest.
        match verify(&policy, &digest('b'), &[candidate], &Revocations::default()) {
            Err(ApprovalError::Refused(r)) => assert_eq!(r.check, Check::WrongDigest),
            other => panic!("{kind}: expected wrong digest, got {other:?}"),
        }
    }
}

#[test]
fn encrypted_keys_need_their_passphrase() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key_path = keygen(tmp.path(), "alice", "ed25519", "correct horse");
    match load_signing_key(&key_path, None) {
        Err(ApprovalError::DecryptKey { hint, .. }) => {
            assert!(hint.contains("SHIPLINE_KEY_PASSPHRASE"))
        }
        other => panic!("expected DecryptKey, got {other:?}"),
    }
    assert!(matches!(
        load_signing_key(&key_path, Some("wrong")),
        Err(ApprovalError::DecryptKey { .. })
    ));
    let key = load_signing_key(&key_path, Some("correct horse")).expect("decrypt");
    let policy = policy_for("alice@example.com", &key_path.with_extension("pub"));
    let signed = sign_approval(
        &Approval::new(request("alice@example.com")).expect("a"),
        &key,
    )
    .expect("sign");
    verify(&policy, &digest('a'), &[signed], &Revocations::default()).expect("accepted");
}
