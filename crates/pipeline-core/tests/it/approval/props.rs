//! Property tests: no input makes the payload parser or the verifier panic, nothing unsigned or
//! tampered is ever accepted, and the canonical payload round-trips.

use proptest::prelude::*;
use shipline_core::approval::{
    Approval, ApprovalError, ApprovalRequest, Origin, Revocations, SignedApproval,
};

use crate::approval::common::*;

/// One key set for all cases: key generation is not what is under test.
static KEYS: std::sync::LazyLock<Keys> = std::sync::LazyLock::new(Keys::new);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn arbitrary_candidates_are_never_accepted(payload in proptest::collection::vec(any::<u8>(), 0..512),
                                               signature in ".{0,300}") {
        let _ = Approval::from_payload(&payload);
        let keys = &*KEYS;
        let c = SignedApproval { payload, signature, origin: Origin::Memory };
        match verify(&keys.policy(1, false), &digest('a'), &[c], &Revocations::default()) {
            Err(ApprovalError::Refused(_)) => {}
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn any_single_byte_change_breaks_the_signature(index in 0usize..4096, bit in 0u8..8) {
        let keys = &*KEYS;
        let signed = sign(request("alice@example.com"), &keys.alice);
        let mut payload = signed.payload.clone();
        let i = index % payload.len();
        payload[i] ^= 1 << bit;
        let c = SignedApproval { payload, ..signed };
        match verify(&keys.policy(1, false), &digest('a'), &[c], &Revocations::default()) {
            Err(ApprovalError::Refused(r)) => prop_assert_eq!(r.check, shipline_core::approval::Check::ForgedSignature),
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn canonical_payload_round_trips(reason in proptest::option::of(".{0,80}"),
                                     requester in "[^\\x00]{1,40}",
                                     hours in 1i64..1000) {
        prop_assume!(!requester.trim().is_empty());
        let req = ApprovalRequest {
            reason,
            requester,
            valid_for: chrono::Duration::hours(hours),
            ..request("alice@example.com")
        };
        let a = Approval::new(req).expect("valid");
        let bytes = a.to_canonical_json();
        prop_assert_eq!(Approval::from_payload(&bytes).expect("parse"), a.clone());
        prop_assert_eq!(a.to_canonical_json(), bytes);
    }
}
